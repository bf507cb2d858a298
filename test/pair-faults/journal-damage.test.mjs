// timeout: 180
// Damage in a journal is named and recovered, never papered over and never
// called a split brain. (1) A flipped byte in the middle of the primary's
// unshipped journal: the primary names it (file, byte, sequences), keeps
// the valid batches after it, resyncs the secondary in full, and the pair
// converges. (2) The secondary's journal damaged at its end and in its
// middle while stopped: no SPLIT_BRAIN, the pair converges.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, startPrimary, waitSynced, waitFor, stopAll, differences, status, sleep } from '../helpers/pair.mjs'
import { listSegments, scanSegment } from '../../dist/journal/segments.js'

async function flipFrame (dir, pick) {
  const segs = await listSegments(dir)
  const seg = segs[segs.length - 1].path
  const scan = await scanSegment(seg)
  const b = pick(scan.batches)
  const off = b.offset + 8 + 20
  const fd = fs.openSync(seg, 'r+')
  const one = Buffer.alloc(1)
  fs.readSync(fd, one, 0, 1, off)
  one[0] ^= 0x5a
  fs.writeSync(fd, one, 0, 1, off)
  fs.closeSync(fd)
  return { seg, offset: b.offset, seq: b.batch.seq }
}

test('primary journal damaged in the middle of what was not shipped: named, full resync, converges', bounded(150_000, async () => {
  const L = layout('damage-primary', { vols: ['one'] })
  const port = 17306
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    fs.writeFileSync(join(L.mnt, 'one', 'first'), 'shipped')
    const { p } = await waitSynced(L)
    await sec.stop(); sec = null
    for (let i = 0; i < 12; i++) { fs.writeFileSync(join(L.mnt, 'one', `a${i}`), `unshipped ${i}\n`.repeat(100)); await sleep(30) }
    await pri.stop(); pri = null
    const hit = await flipFrame(L.pstate, bs => bs.filter(b => b.batch.seq > p.lastSeq)[1])
    sec = await startSecondary(L, port)
    pri = await startPrimary(L, port)
    await waitSynced(L, 90_000)
    assert.match(pri.err, new RegExp(`journal damaged: ${hit.seg.replace(/[.]/g, '\\.')} at byte ${hit.offset} \\(crc\\): sequences ${hit.seq}\\.\\.`))
    assert.match(pri.err, /full resync of the secondary starts/)
    assert.not.match(pri.err + sec.err, /SPLIT_BRAIN/)
    assert.is(differences(L), null)
    const st = await status(L.pstate)
    assert.ok(st.damage.length >= 1, JSON.stringify(st.damage))
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('secondary journal damaged (torn below what it applied, and in the middle): no SPLIT_BRAIN, converges', bounded(150_000, async () => {
  const L = layout('damage-secondary', { vols: ['one'] })
  const port = 17307
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    for (const where of ['last', 'middle']) {
      for (let i = 0; i < 8; i++) { fs.writeFileSync(join(L.mnt, 'one', `${where}${i}`), `data ${i}\n`.repeat(50)); await sleep(30) }
      await waitSynced(L)
      await sec.stop(); sec = null
      await flipFrame(L.sstate, bs => where === 'last' ? bs[bs.length - 1] : bs[Math.floor(bs.length / 2)])
      sec = await startSecondary(L, port)
      fs.writeFileSync(join(L.mnt, 'one', `after-${where}`), 'after')
      await waitSynced(L, 90_000)
      assert.not.match(pri.err + sec.err, /SPLIT_BRAIN/, `${where}:\n${pri.err.slice(-2000)}`)
      assert.is(differences(L), null, where)
    }
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
