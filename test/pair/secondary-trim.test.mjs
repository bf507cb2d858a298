// timeout: 120
// The secondary's journal does not grow forever: segments wholly applied
// (and on disk in the copy) are deleted. With 256 KiB segments, 6 MiB
// through the pair leaves about one segment in the secondary's state
// directory; a restart of the secondary then resumes (the chain survives
// the trim: no new resync) and the pair ends identical.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, stopAll, differences, resyncsIn } from '../helpers/pair.mjs'

const segBytes = (dir) => fs.readdirSync(dir).filter(n => n.endsWith('.seg')).map(n => fs.statSync(join(dir, n)).size)

test('secondary journal trimmed once applied; resumes after a restart without a resync', bounded(100_000, async () => {
  const L = layout('secondary-trim', { vols: ['one'] })
  const port = 17305
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port, { sextra: ['--segment-size', '256K'] }))
    const chunk = Buffer.alloc(256 << 10)
    for (let i = 0; i < 24; i++) {
      chunk.fill(i)
      fs.writeFileSync(join(L.mnt, 'one', `f${i}`), chunk)
    }
    await waitSynced(L)
    // Trims run beside the apply (receiver.ts): the copy can match before the last one is done.
    for (const end = Date.now() + 10_000; segBytes(L.sstate).length > 2 && Date.now() < end;) await new Promise(resolve => setTimeout(resolve, 50))
    const segs = segBytes(L.sstate)
    const total = segs.reduce((a, b) => a + b, 0)
    console.log(`secondary journal after 6 MiB: ${segs.length} segments, ${total} bytes`)
    assert.ok(segs.length <= 2, `segments left: ${segs.length}`)
    assert.ok(total < (3 << 20), `journal bytes left: ${total}`)
    const before = resyncsIn(pri.err)
    await sec.stop()
    sec = await startSecondary(L, port, ['--segment-size', '256K'])
    fs.writeFileSync(join(L.mnt, 'one', 'after'), 'after the restart')
    await waitSynced(L)
    assert.is(resyncsIn(pri.err), before, `a resync after the restart:\n${pri.err.slice(-1500)}`)
    assert.is(differences(L), null)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
