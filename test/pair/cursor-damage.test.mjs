// timeout: 120
// A bit flipped in the secondary's applied cursor while it is stopped: the
// secondary names the damage, does not re-apply from a wrong place, and
// counts its copy as inconsistent; the primary resyncs it in full (block
// checksums) and the pair converges.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, stopAll, differences, status } from '../helpers/pair.mjs'

const port = 17322

test('a flipped bit in the applied cursor: named, full resync, converges', bounded(100_000, async () => {
  const L = layout('cursor-damage', { vols: ['one'] })
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    for (let i = 0; i < 10; i++) fs.writeFileSync(join(L.mnt, 'one', `f${i}`), `file ${i}\n`.repeat(100))
    await waitSynced(L)
    await sec.stop()
    const cursor = join(L.sstate, 'applied')
    const b = fs.readFileSync(cursor)
    b[6] ^= 0x10 // the applied sequence, 4096 higher or lower
    fs.writeFileSync(cursor, b)
    sec = await startSecondary(L, port)
    for (let i = 0; i < 5; i++) fs.writeFileSync(join(L.mnt, 'one', `g${i}`), `more ${i}\n`)
    await waitSynced(L, 60_000)
    assert.is(differences(L), null)
    assert.match(sec.err, /applied cursor damaged: .*applied: checksum mismatch/)
    assert.match(pri.err, /full: the copy is marked inconsistent/)
    assert.ok((await status(L.sstate)).consistent)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
