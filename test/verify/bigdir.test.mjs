// timeout: 150
// A directory with more names than one verify answer holds (16,384): the
// answers stay bounded (the replication connection is never dropped for
// an oversized frame), the walk goes on from the primary's names, a file
// missing on the copy is still found, and the report says which directory
// was not fully compared.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, cli } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, status } from '../helpers/pair.mjs'

const port = 17635
const files = 16_500

test('a directory over the listing bound', bounded(140_000, async () => {
  const L = layout('verify-bigdir', { vols: ['one'] })
  let pri, sec
  try {
    // The same tree on both sides before they start: the initial sync finds it identical.
    for (const side of [L.p.one, L.s.one]) {
      fs.mkdirSync(join(side, 'big'))
      for (let i = 0; i < files; i++) fs.writeFileSync(join(side, 'big', `f${i}`), '')
    }
    ;({ pri, sec } = await startPair(L, port, { ms: 100_000 }))
    fs.unlinkSync(join(L.s.one, 'big', 'f16499'))

    const r = await cli(['verify', '--state', L.pstate, '--json'], { timeoutMs: 100_000 })
    assert.equal(r.code, 1, r.out.slice(0, 2000) + r.err)
    const rep = JSON.parse(r.out)
    assert.equal(rep.found.map(m => `${m.path} ${m.kind}`), ['big/f16499 missing'])
    assert.equal(rep.skipped, ['one:big: over 16384 entries: names only the secondary has are not looked for'])
    assert.ok(rep.entriesCompared >= files, `${rep.entriesCompared} entries`)
    const human = await cli(['verify', '--state', L.pstate], { timeoutMs: 100_000 })
    assert.match(human.out, /not compared: one:big: over 16384 entries/)
    assert.equal((await status(L.pstate)).peerState, 'streaming', 'the replication connection stayed up')
    assert.not.match(pri.err + sec.err, /BAD_MESSAGE|FRAME_TOO_LARGE|refusing input/)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
