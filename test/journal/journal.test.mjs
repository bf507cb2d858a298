// The journal without a mount: append and read back in order across
// rotations, acknowledgement trims whole segments, reopen continues the
// sequence and the chain, undo and rebase, group commit batching.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { GroupCommit } from '../../dist/journal/group-commit.js'
import { frameMarkAt, listSegments, markFrame } from '../../dist/journal/segments.js'
import { formatVersion } from '../../dist/core/limits.js'
import { decodeBatch } from '../../dist/journal/codec.js'

const w = (i, n = 1000) => ({ kind: 'write', vol: 0, path: `f${i % 3}`, off: i * n, data: Buffer.alloc(n, i & 255) })

async function readAll (j, from = 1) {
  const out = []
  for await (const { batch } of j.read(from)) batch.records.forEach((r, i) => out.push([batch.seq + i, r]))
  return out
}

test('appends read back in order across segment rotations; reopen continues sequence and chain', async () => {
  const dir = join(tempDir('journal'), 'state')
  let j = await Journal.open(dir, { group: 'g', segmentBytes: 64 * 1024 })
  for (let i = 0; i < 200; i++) j.appendRecords([w(i)], false)
  assert.ok((await listSegments(dir)).length > 2, 'rotated')
  const recs = await readAll(j)
  assert.equal(recs.map(([s]) => s), Array.from({ length: 200 }, (_, i) => i + 1))
  assert.equal(recs[150][1].off, 150 * 1000)
  const hash = j.lastHash
  await j.close()
  j = await Journal.open(dir, { group: 'g', segmentBytes: 64 * 1024 })
  assert.is(j.nextSeq, 201)
  assert.ok(j.lastHash.equals(hash), 'chain tail survives a reopen')
  assert.ok((await j.hashAt(200)).equals(hash))
  await j.close()
})

test('ack trims only wholly acknowledged segments, never the newest', async () => {
  const dir = join(tempDir('journal'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 32 * 1024 })
  for (let i = 0; i < 100; i++) j.appendRecords([w(i)], false)
  const before = await listSegments(dir)
  await j.ack(50)
  const after = await listSegments(dir)
  assert.ok(after.length < before.length, 'some segments went')
  assert.ok(after[0].first <= 51, 'the segment holding 51 stays')
  assert.equal((await readAll(j, 51)).map(([s]) => s)[0], 51)
  await j.ack(100)
  assert.is((await listSegments(dir)).length, 1, 'the newest stays')
  await j.close()
})

test('undo takes back the last batch; rebase restarts history', async () => {
  const dir = join(tempDir('journal'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  j.appendRecords([w(1)], false)
  const m = j.mark()
  j.appendRecords([w(2), w(3)], false)
  await j.undo(m)
  assert.is(j.nextSeq, 2)
  assert.equal((await readAll(j)).length, 1)
  j.appendRecords([w(4)], false) // continues the chain after the undo
  assert.equal((await readAll(j)).map(([s]) => s), [1, 2])
  const prev = Buffer.alloc(16, 7)
  await j.rebase(1000, prev)
  assert.is(j.nextSeq, 1000)
  assert.is((await listSegments(dir)).length, 0)
  j.appendRecords([w(5)], false)
  await j.close()
  const again = await Journal.open(dir, { group: 'g' })
  assert.is(again.nextSeq, 1001)
  await again.close()
})

test('frame marks: about one per MiB, the last at or before a sequence is where a read starts', () => {
  const seg = { first: 1, path: 'x', bytes: 0 }
  for (let seq = 1, off = 0; seq <= 100; seq += 2, off += 300 * 1024) markFrame(seg, seq, off) // batches of 2 records, 300 KiB frames
  assert.equal(seg.marks.map(m => m.offset / 1024), [1200, 2400, 3600, 4800, 6000, 7200, 8400, 9600, 10800, 12000, 13200, 14400])
  assert.is(frameMarkAt(seg, 1), 0, 'before the first mark: the segment\'s start')
  assert.is(frameMarkAt(seg, 8), 0)
  assert.is(frameMarkAt(seg, 9), 1200 * 1024, 'the batch starting at 9')
  assert.is(frameMarkAt(seg, 10), 1200 * 1024, 'a record inside it')
  assert.is(frameMarkAt(seg, 100), 14400 * 1024)
  assert.is(frameMarkAt({ first: 1, path: 'y', bytes: 5 }, 3), 0, 'no marks (a segment from disk)')
})

test('appends keep frame marks; a read from the middle of a segment is exact; a cut forgets the marks past it', async () => {
  const dir = join(tempDir('journal'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 64 << 20 })
  for (let i = 0; i < 300; i++) j.appendRecords([w(i, 20000), w(i + 1, 100)], false) // 600 records, one segment of 6 MiB
  assert.is((await listSegments(dir)).length, 1)
  const marks = () => j.segments[0].marks // the journal's own record of them (private in the TS)
  assert.ok(marks().length >= 5, `${marks().length} marks in 6 MiB`)
  for (const from of [401, 402, 599, 600]) {
    const got = await readAll(j, from)
    assert.is(got[0][0], from % 2 ? from : from - 1, `from ${from}: the batch holding it first`)
    assert.is(got[got.length - 1][0], 600)
    assert.is(got.length, 600 - (from % 2 ? from : from - 1) + 1)
  }
  const m = j.mark()
  j.appendRecords([w(900, 1 << 20), w(901, 1 << 20)], false)
  j.appendRecords([w(902, 10)], false) // 2 MiB past the last mark: marked
  assert.ok(marks().some(k => k.offset >= m.bytes))
  await j.undo(m)
  assert.not.ok(marks().some(k => k.offset >= m.bytes), 'none left in what was cut')
  j.appendRecords([w(903, 10)], false)
  const tail = await readAll(j, 601)
  assert.equal(tail.map(([s, r]) => [s, r.data.length]), [[601, 10]], 'the batch written where the cut one was')
  await j.close()
})

test('a batch off the chain or out of sequence is refused', async () => {
  const dir = join(tempDir('journal'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  j.appendRecords([w(1)], false)
  assert.throws(() => j.appendPayload(Buffer.alloc(1), { v: formatVersion, group: 'g', seq: 5, prev: j.lastHash, ts: 0, sync: false, records: [w(2)] }), /JOURNAL_GAP|expects/)
  assert.throws(() => j.appendPayload(Buffer.alloc(1), { v: formatVersion, group: 'g', seq: 2, prev: Buffer.alloc(16), ts: 0, sync: false, records: [w(2)] }), /previous-batch hash/)
  await j.close()
})

test('batches stored together (appendPayloads) write what one at a time writes; a batch off the chain stores those before it', async () => {
  const src = await Journal.open(join(tempDir('journal'), 'src'), { group: 'g', segmentBytes: 64 * 1024 })
  const items = []
  for (let i = 0; i < 120; i++) {
    const a = src.appendRecords([w(i), w(i + 1, 10)], false)
    items.push({ payload: a.payload, batch: decodeBatch(a.payload) })
  }
  const one = await Journal.open(join(tempDir('journal'), 'one'), { group: 'g', segmentBytes: 64 * 1024 })
  const many = await Journal.open(join(tempDir('journal'), 'many'), { group: 'g', segmentBytes: 64 * 1024 })
  for (const it of items) one.appendPayload(it.payload, it.batch)
  const marks = []
  for (let i = 0; i < items.length; i += 40) {
    for (const d of many.appendPayloads(items.slice(i, i + 40))) marks.push(d.before)
  }
  assert.is(many.nextSeq, one.nextSeq)
  assert.ok(many.lastHash.equals(one.lastHash), 'the same chain')
  const segs = async dir => Promise.all((await listSegments(dir)).map(s => fs.promises.readFile(s.path)))
  assert.equal(await segs(many.dir), await segs(one.dir), 'the same segments, byte for byte')
  assert.equal(await readAll(many), await readAll(one))
  // Each batch's mark is where it began: undo to the 100th leaves 99.
  await many.undo(marks[99])
  assert.is(many.nextSeq, items[99].batch.seq)
  // A group whose third batch is off the chain: the two before it are stored, then the refusal.
  const fresh = await Journal.open(join(tempDir('journal'), 'fresh'), { group: 'g', segmentBytes: 64 * 1024 })
  const bad = { payload: items[2].payload, batch: { ...items[2].batch, prev: Buffer.alloc(16) } }
  assert.throws(() => fresh.appendPayloads([items[0], items[1], bad, items[3]]), /previous-batch hash/)
  assert.is(fresh.nextSeq, items[2].batch.seq)
  assert.equal((await readAll(fresh)).length, 4)
  for (const j of [src, one, many, fresh]) await j.close()
})

test('group commit: sequences in submit order, one batch per event-loop turn, barrier on disk', async () => {
  const dir = join(tempDir('journal'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  const gc = new GroupCommit(j)
  const seen = []
  gc.listeners.push(a => seen.push([a.seq, a.count]))
  const done = []
  for (let i = 0; i < 10; i++) done.push(gc.submit(w(i)))
  assert.equal(done.map(d => d.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  await Promise.all(done.map(d => d.written))
  assert.equal(seen, [[1, 10]], 'the ten records went out as one batch')
  gc.submit(w(11))
  await gc.barrier()
  assert.equal(seen[1], [11, 1])
  // a batch closes at the size target: 3 x 600 KiB records make 2 batches
  for (let i = 0; i < 3; i++) gc.submit(w(20 + i, 600 * 1024))
  await gc.idle()
  assert.is(seen.length, 4)
  await gc.close()
  await j.close()
})

test('a second process cannot open the same state directory', async () => {
  const dir = join(tempDir('journal'), 'state')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(join(dir, 'lock'), `${process.ppid}\n`) // a live process (our parent)
  try {
    await Journal.open(dir, { group: 'g' })
    assert.unreachable('opened a locked state dir')
  } catch (err) {
    assert.is(err.code, 'JOURNAL_LOCKED')
  }
  fs.writeFileSync(join(dir, 'lock'), '999999999\n') // a dead one: taken over
  const j = await Journal.open(dir, { group: 'g' })
  await j.close()
})

test('batches larger than a read, across reads and small ones between, read back whole and in order', async () => {
  const dir = join(tempDir('journal'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  // Reads go 4 MiB at a time: frames that straddle one, one larger than one
  // (six records of 1 MiB), tiny ones. Each batch's data holds its first sequence.
  const mib = 1 << 20
  const shapes = [[mib, mib, mib], [mib, mib, mib], [mib, mib, mib, mib, mib, mib], [10], [mib, mib], [100], [mib, 5], [1]]
  for (const lens of shapes) j.appendRecords(lens.map((n, k) => ({ kind: 'write', vol: 0, path: 'f', off: k * mib, data: Buffer.alloc(n, j.nextSeq & 255) })), false)
  const got = []
  for await (const { batch, payload } of j.read(1)) {
    got.push([batch.seq, batch.records.map(r => r.data.length), batch.records.every(r => r.data.every(b => b === (batch.seq & 255)))])
    assert.ok(decodeBatch(payload).records.length === batch.records.length, 'the payload is the batch')
  }
  let seq = 1
  assert.equal(got, shapes.map(lens => { const s = seq; seq += lens.length; return [s, lens, true] }))
  const third = got[2][0]
  const fromThird = []
  for await (const { batch } of j.read(third)) fromThird.push(batch.seq)
  assert.equal(fromThird, got.slice(2).map(g => g[0]), 'from a batch in the middle')
  await j.close()
})

test.run()
