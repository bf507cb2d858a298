// Following a journal another writer appends to (journal/tail.ts), as the
// primary follows the native core: every batch reaches the listeners in
// order, and the journal's chain hash is the newest batch's, whether or not
// a listener keeps payloads (without one the read buffer is reused, so the
// hash must be taken before the next read overwrites the bytes), with frames
// smaller and larger than one read. Payloads kept by a listener stay intact
// while later reads go on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { JournalTail } from '../../dist/journal/tail.js'
import { chainHash, decodeBatch, encodeBatch } from '../../dist/journal/codec.js'
import { encodeFrame } from '../../dist/journal/frame.js'
import { formatVersion } from '../../dist/core/limits.js'

/** A writer other than the Journal object: appends frames to the segment file, as the core does. */
function externalWriter (journal) {
  const first = journal.nextSeq
  const path = journal.segmentPath(first)
  const w = { nextSeq: first, bytes: 0, prev: journal.lastHash, firsts: [] }
  w.append = (dataBytes, fill) => {
    // A record holds at most 1 MiB: a larger batch is several.
    const records = []
    for (let off = 0; off < dataBytes; off += 1 << 20) records.push({ kind: 'write', vol: 0, path: 'f', off, data: Buffer.alloc(Math.min(1 << 20, dataBytes - off), fill) })
    const batch = { v: formatVersion, group: 'g', seq: w.nextSeq, prev: w.prev, ts: Date.now(), sync: false, records }
    const payload = encodeBatch(batch)
    const frame = encodeFrame(payload)
    fs.appendFileSync(path, frame)
    w.firsts.push(w.nextSeq)
    w.prev = chainHash(payload)
    w.nextSeq += records.length
    w.bytes += frame.length
  }
  w.position = () => ({ nextSeq: w.nextSeq, segmentFirst: first, segmentBytes: w.bytes })
  return w
}

async function setup (retainPayloads) {
  const dir = join(tempDir('tail'), 'state')
  const journal = await Journal.open(dir, { group: 'g', segmentBytes: 64 << 20 })
  journal.stopAppending()
  journal.handOver({ rebase: async () => {}, exclusive: async fn => fn() })
  const writer = externalWriter(journal)
  const errors = []
  const tail = new JournalTail(journal, writer.position, err => errors.push(err))
  tail.retainPayloads = retainPayloads
  const seen = []
  tail.listeners.push((a, batch) => seen.push({ seq: a.seq, fill: batch.records[0].data[0], bytes: batch.records.reduce((n, r) => n + r.data.length, 0), a }))
  return { journal, writer, tail, errors, seen }
}

for (const retain of [false, true]) {
  test(`${retain ? 'payloads kept' : 'read buffer reused'}: batches in order, the chain hash the newest's`, async () => {
    const { journal, writer, tail, errors, seen } = await setup(retain)
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
    if (retain) {
      for (const s of seen) {
        const b = decodeBatch(s.a.payload)
        assert.is(b.seq, s.seq)
        assert.ok(b.records.every(r => r.data.every(x => x === s.fill)), `batch ${s.seq} kept intact`)
      }
    }
    tail.close()
    await journal.close()
  })
}

test.run()
