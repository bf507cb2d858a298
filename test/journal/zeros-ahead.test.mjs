// The TypeScript journal writer (a secondary's) writes zeros ahead of its
// end before a small fdatasync, as the native core does: the frames read back
// the same, a kill -9 leaves zeros that the next open cuts without calling
// them a torn tail or damage, and a rotation, an undo or a close leaves each
// segment ending at its last frame.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { listSegments, scanSegment } from '../../dist/journal/segments.js'

const journalModule = fileURLToPath(new URL('../../dist/journal/journal.js', import.meta.url))
const w = (i, n = 4096) => ({ kind: 'write', vol: 0, path: `f${i % 3}`, off: i * n, data: Buffer.alloc(n, (i % 250) + 1) })

async function readAll (j, from = 1) {
  const out = []
  for await (const { batch } of j.read(from)) batch.records.forEach((r, i) => out.push([batch.seq + i, r]))
  return out
}

/** The newest segment's file: its size, and where its frames end. */
async function newestFile (dir) {
  const segs = await listSegments(dir)
  const s = segs[segs.length - 1]
  const scan = await scanSegment(s.path)
  return { size: fs.statSync(s.path).size, framesEnd: scan.goodBytes, zerosAt: scan.zerosAt, holes: scan.holes.length }
}

test('a sync writes zeros ahead of the end; the frames read back; a close cuts them', async () => {
  const dir = join(tempDir('zeros-ahead'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  j.appendRecords([w(1)], true)
  await j.sync() // the first waits for the new segment's name too, synced in the background
  j.appendRecords([w(2)], true)
  assert.ok(j.syncHere(), 'synced on the calling thread')
  let f = await newestFile(dir)
  assert.ok(f.size >= f.framesEnd + 64 * 1024, `zeros ahead: file ${f.size} bytes, frames end at ${f.framesEnd}`)
  assert.is(f.zerosAt, f.framesEnd)
  assert.is(f.holes, 0)
  for (let i = 3; i <= 40; i++) { j.appendRecords([w(i)], true); await j.sync() }
  f = await newestFile(dir)
  assert.is(f.zerosAt, f.framesEnd, 'appends overwrite the zeros, which still end the frames')
  assert.equal((await readAll(j)).map(([s]) => s), Array.from({ length: 40 }, (_, i) => i + 1))
  await j.close()
  f = await newestFile(dir)
  assert.is(f.size, f.framesEnd, 'a clean close leaves no zeros')
  assert.is(f.zerosAt, null)
})

test('a sync after more than 64 KiB of frames writes no zeros: they would be overrun anyway', async () => {
  const dir = join(tempDir('zeros-ahead'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  j.appendRecords([w(1, 200 * 1024)], true)
  await j.sync() // the first waits for the new segment's name too, synced in the background
  let f = await newestFile(dir)
  assert.is(f.size, f.framesEnd, 'a large sync: no zeros')
  j.appendRecords([w(2)], true)
  assert.ok(j.syncHere())
  f = await newestFile(dir)
  assert.ok(f.size >= f.framesEnd + 64 * 1024, 'a small one: zeros ahead')
  await j.close()
})

test('kill -9 after syncs: the next open cuts the zeros, reports nothing, and appends on', async () => {
  const dir = join(tempDir('zeros-ahead'), 'state')
  const child = `
    const { Journal } = await import(${JSON.stringify(journalModule)})
    const j = await Journal.open(${JSON.stringify(dir)}, { group: 'g' })
    for (let i = 1; i <= 25; i++) {
      j.appendRecords([{ kind: 'write', vol: 0, path: 'f', off: i * 4096, data: Buffer.alloc(4096, i) }], true)
      await j.sync()
    }
    process.kill(process.pid, 'SIGKILL')`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], { timeout: 30000 })
  assert.is(r.signal, 'SIGKILL', `child: ${r.stderr}`)
  const before = await newestFile(dir)
  assert.ok(before.size > before.framesEnd, 'the kill left zeros ahead of the end')
  const j = await Journal.open(dir, { group: 'g' })
  assert.is(j.recovery, null, 'no torn tail')
  assert.equal(j.stateDamage, [])
  assert.equal(j.damage, [])
  assert.is(j.nextSeq, 26)
  const after = await newestFile(dir)
  assert.is(after.size, before.framesEnd, 'the zeros were cut')
  j.appendRecords([w(26)], true)
  await j.sync()
  const recs = await readAll(j)
  assert.equal(recs.map(([s]) => s), Array.from({ length: 26 }, (_, i) => i + 1))
  assert.ok(recs[24][1].data.equals(Buffer.alloc(4096, 25)))
  await j.close()
})

test('a rotation and an undo leave each segment ending at its last frame', async () => {
  const dir = join(tempDir('zeros-ahead'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 512 * 1024 })
  for (let i = 1; i <= 200; i++) { j.appendRecords([w(i)], true); j.syncHere() || await j.sync() }
  const segs = await listSegments(dir)
  assert.ok(segs.length >= 2, 'rotated')
  for (const s of segs.slice(0, -1)) {
    const scan = await scanSegment(s.path)
    assert.is(fs.statSync(s.path).size, scan.goodBytes, `${s.path} ends at its last frame`)
    assert.is(scan.zerosAt, null)
  }
  const m = j.mark()
  j.appendRecords([w(201), w(202)], true)
  await j.undo(m)
  let f = await newestFile(dir)
  assert.is(f.size, f.framesEnd, 'the undo cut the zeros with the batch')
  j.appendRecords([w(201)], true)
  await j.sync()
  f = await newestFile(dir)
  assert.is(f.zerosAt, f.framesEnd)
  assert.equal((await readAll(j)).map(([s]) => s), Array.from({ length: 201 }, (_, i) => i + 1))
  await j.close()
  const again = await Journal.open(dir, { group: 'g', segmentBytes: 512 * 1024 })
  assert.is(again.nextSeq, 202)
  await again.close()
})

test.run()
