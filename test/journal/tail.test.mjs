// Following a journal another writer appends to (journal/tail.ts), as the
// primary follows the native core. JournalTail (a mount with a peer): every
// batch reaches the listeners in order, the journal's chain hash is the
// newest batch's, with frames smaller and larger than one read, and payloads
// kept by a listener stay intact while later reads go on (each a buffer of
// its own, or one of the journal's reused buffers that it holds); a read of
// the journal ends at the last frame followed. PositionFollower
// (no peer): the journal takes the writer's position without reading frames,
// across segments the writer finished in between, and ends up as a fresh
// open of the same directory sees it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { JournalTail, PositionFollower } from '../../dist/journal/tail.js'
import { chainHash, decodeBatch, encodeBatch } from '../../dist/journal/codec.js'
import { encodeFrame } from '../../dist/journal/frame.js'
import { formatVersion } from '../../dist/core/limits.js'

/** A writer other than the Journal object: appends frames to the segment file, as the core does. */
function externalWriter (journal) {
  let first = journal.nextSeq
  let path = journal.segmentPath(first)
  const w = { nextSeq: first, bytes: 0, prev: journal.lastHash, firsts: [] }
  /** The next append goes to a new segment, as the core's rotation does. */
  w.rotate = () => {
    first = w.nextSeq
    path = journal.segmentPath(first)
    w.bytes = 0
  }
  /** `cutAt`: only that many bytes of the frame reach the file for now
   *  (the position says the whole); `w.finish()` writes the rest. */
  w.append = (dataBytes, fill, cutAt = Infinity) => {
    // A record holds at most 1 MiB: a larger batch is several.
    const records = []
    for (let off = 0; off < dataBytes; off += 1 << 20) records.push({ kind: 'write', vol: 0, path: 'f', off, data: Buffer.alloc(Math.min(1 << 20, dataBytes - off), fill) })
    const batch = { v: formatVersion, group: 'g', seq: w.nextSeq, prev: w.prev, ts: Date.now(), sync: false, records }
    const payload = encodeBatch(batch)
    const frame = encodeFrame(payload)
    fs.appendFileSync(path, frame.subarray(0, cutAt))
    w.finish = () => fs.appendFileSync(path, frame.subarray(cutAt))
    w.firsts.push(w.nextSeq)
    w.prev = chainHash(payload)
    w.nextSeq += records.length
    w.bytes += frame.length
  }
  w.position = () => ({ nextSeq: w.nextSeq, segmentFirst: first, segmentBytes: w.bytes, lastHash: w.prev })
  return w
}

async function openHandedOver (dir) {
  const journal = await Journal.open(dir, { group: 'g', segmentBytes: 64 << 20 })
  journal.stopAppending()
  journal.handOver({ rebase: async () => {}, exclusive: async fn => fn() })
  return journal
}

async function setup () {
  const journal = await openHandedOver(join(tempDir('tail'), 'state'))
  const writer = externalWriter(journal)
  const errors = []
  const tail = new JournalTail(journal, writer.position, err => errors.push(err))
  const seen = []
  tail.listeners.push((a, batch) => seen.push({ seq: a.seq, fill: batch.records[0].data[0], bytes: batch.records.reduce((n, r) => n + r.data.length, 0), a }))
  return { journal, writer, tail, errors, seen }
}

test('batches in order, the chain hash the newest\'s, payloads kept intact', async () => {
    const { journal, writer, tail, errors, seen } = await setup()
    tail.listeners.push(a => journal.buffers.hold(a.payload)) // kept: held
    const sizes = [100, 5000, 300 << 10, 6 << 20, 200, 1 << 20, 3 << 20, 10]
    for (let round = 0; round < 3; round++) {
      // Several frames per read, one larger than a read, then the next round reads over the same buffer.
      for (const [i, n] of sizes.entries()) writer.append(n, (round * 16 + i) & 255)
      await tail.caughtUp()
      assert.equal(errors.map(e => e.message), [])
      assert.is(journal.nextSeq, writer.nextSeq)
      assert.ok(journal.lastHash.equals(writer.prev), `round ${round}: the journal's chain hash is the newest batch's`)
      assert.ok((await journal.hashAt(writer.nextSeq - 1)).equals(writer.prev))
    }
    assert.equal(seen.map(s => s.seq), writer.firsts)
    assert.equal(seen.map(s => s.bytes), [...sizes, ...sizes, ...sizes])
    assert.equal(seen.map(s => s.fill), [0, 1, 2].flatMap(r => sizes.map((_, i) => (r * 16 + i) & 255)))
    for (const s of seen) {
      const b = decodeBatch(s.a.payload)
      assert.is(b.seq, s.seq)
      assert.ok(b.records.every(r => r.data.every(x => x === s.fill)), `batch ${s.seq} kept intact`)
    }
    tail.close()
    await journal.close()
})

test('payloads lent from reused buffers: held ones stay intact, the chain hash is taken before a buffer is reused', async () => {
  let hold = false
  const { journal, writer, tail, errors, seen } = await setup()
  tail.listeners.push(a => { if (hold) journal.buffers.hold(a.payload) })
  // Each round ends with a frame larger than a read: read alone, at the buffer's start.
  const sizes = [100, 5000, 300 << 10, 200, 1 << 20, 3 << 20, 10, 6 << 20]
  const heldRounds = [false, true, false, true]
  for (const [round, held] of heldRounds.entries()) {
    hold = held
    for (const [i, n] of sizes.entries()) writer.append(n, (round * 16 + i) & 255)
    await tail.caughtUp()
    const hash = writer.prev
    // A read that follows nothing (a frame not whole yet) goes into a buffer let go of.
    writer.append(64 << 10, 0xee, 1000)
    await tail.caughtUp()
    assert.ok(journal.lastHash.equals(hash), `round ${round}: the chain hash is the last batch's, whatever the buffers hold since`)
    writer.finish()
    await tail.caughtUp()
    assert.equal(errors.map(e => e.message), [])
    assert.is(journal.nextSeq, writer.nextSeq)
    assert.ok(journal.lastHash.equals(writer.prev))
  }
  assert.equal(seen.map(s => s.seq), writer.firsts)
  const perRound = sizes.length + 1
  const heldSeen = seen.filter((s, i) => heldRounds[Math.floor(i / perRound)])
  assert.is(heldSeen.length, 2 * perRound)
  for (const s of heldSeen) {
    const b = decodeBatch(s.a.payload)
    assert.is(b.seq, s.seq)
    assert.ok(b.records.every(r => r.data.every(x => x === s.fill)), `batch ${s.seq} held: intact`)
    journal.buffers.release(s.a.payload)
  }
  tail.close()
  assert.is(journal.buffers.inUse, 0, 'every buffer back once released')
  await journal.close()
})

test('a read of the journal stops where the frames followed end, not at a frame being written past them', async () => {
  const { journal, writer, tail, errors } = await setup()
  for (let i = 0; i < 3; i++) writer.append(100 << 10, i)
  await tail.caughtUp()
  writer.append(100 << 10, 9, 5000) // being written: not followed yet
  const readFile = fs.promises.readFile
  const wholeReads = []
  fs.promises.readFile = async (...args) => { wholeReads.push(String(args[0])); return readFile(...args) }
  try {
    const seqs = []
    for await (const { batch } of journal.read(writer.firsts[0])) seqs.push(batch.seq)
    assert.equal(seqs, writer.firsts.slice(0, 3))
    assert.equal(wholeReads, [], 'no scan of the whole segment for a frame under way')
  } finally {
    fs.promises.readFile = readFile
  }
  writer.finish()
  await tail.caughtUp()
  assert.equal(errors.map(e => e.message), [])
  tail.close()
  await journal.close()
})

test('position follower: the writer\'s position across segments, as a fresh open sees the directory', async () => {
  const dir = join(tempDir('tail-position'), 'state')
  const journal = await openHandedOver(dir)
  const writer = externalWriter(journal)
  const follower = new PositionFollower(journal, writer.position)
  const sizes = [100, 5000, 300 << 10, 200]
  let followed = 0
  for (let round = 0; round < 4; round++) {
    for (const [i, n] of sizes.entries()) writer.append(n, (round * 16 + i) & 255)
    if (round === 1) { writer.rotate(); writer.append(10, 1); writer.rotate() } // two segments finished unseen
    writer.rotate()
    writer.append(7000, 2)
    await follower.caughtUp()
    assert.is(journal.nextSeq, writer.nextSeq)
    assert.ok(journal.lastHash.equals(writer.prev), `round ${round}: the chain hash is the writer's`)
    assert.ok(journal.bytes > followed, 'the journal\'s bytes grow')
    followed = journal.bytes
  }
  follower.wake() // nothing new: nothing changes
  assert.is(journal.bytes, followed)
  const seen = { count: journal.segmentCount, bytes: journal.bytes, newest: { ...journal.newestSegment } }
  assert.is(seen.count, 6)
  await journal.close()
  const reopened = await Journal.open(dir, { group: 'g', segmentBytes: 64 << 20 })
  assert.equal({ count: reopened.segmentCount, bytes: reopened.bytes, newest: { ...reopened.newestSegment } }, seen, 'segments and their lengths as on disk')
  assert.is(reopened.nextSeq, writer.nextSeq)
  assert.ok(reopened.lastHash.equals(writer.prev))
  await reopened.close()
})

test.run()
