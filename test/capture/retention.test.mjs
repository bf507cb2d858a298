// Retention of a primary without a peer (capture/retention.ts) on a real
// journal: by size and by age (a clock the test moves), never past the
// backing sync's point, never the newest segment; what no peer
// acknowledged is folded into the persisted dirty set before it goes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { DirtySet } from '../../dist/capture/dirty-set.js'
import { Retention, parseRetain } from '../../dist/capture/retention.js'

const w = (i, n = 1000) => ({ kind: 'write', vol: 0, path: `f${i % 3}`, off: i * n, data: Buffer.alloc(n, i & 255) })

async function setup () {
  const dir = join(tempDir('retention'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 32 * 1024 })
  return { dir, j, dirty: DirtySet.load(dir), lines: [] }
}

test('parseRetain: sizes and durations, clear errors', () => {
  assert.equal(parseRetain('10G'), { maxBytes: 10 * 1024 ** 3 })
  assert.equal(parseRetain('512MiB'), { maxBytes: 512 * 1024 ** 2 })
  assert.equal(parseRetain('30m'), { maxAgeMs: 30 * 60_000 })
  assert.equal(parseRetain('12h'), { maxAgeMs: 12 * 3_600_000 })
  assert.equal(parseRetain('7d'), { maxAgeMs: 7 * 86_400_000 })
  assert.throws(() => parseRetain('4K'), /keep at least 1M/)
  assert.throws(() => parseRetain('0s'), /positive/)
  assert.throws(() => parseRetain('soon'), /bad --retain "soon"/)
})

test('by size: drops oldest segments down to the limit, folds what no peer had, persists it first', async () => {
  const { dir, j, dirty, lines } = await setup()
  for (let i = 0; i < 300; i++) j.appendRecords([w(i)], false) // ~300 KiB, ~10 segments
  await j.ack(40) // a peer had the first 40
  const r = new Retention(j, dirty, { maxBytes: 100 * 1024 }, () => Infinity, l => lines.push(l))
  await r.check()
  const s = r.status()
  assert.ok(j.bytes <= 100 * 1024, `journal ${j.bytes} bytes`)
  assert.ok(s.droppedSegments >= 5 && s.droppedRecords >= 150, JSON.stringify(s))
  assert.is(s.foldedRecords, s.droppedThroughSeq - 40, 'every dropped record past the acknowledged 40')
  assert.is(j.firstSeq, s.droppedThroughSeq + 1)
  assert.is(s.trackedRanges, s.foldedRecords) // each write its own range (every third KiB of f0, f1, f2)
  assert.match(lines.join('\n'), /dropped journal segment \d+\.\.\d+ .* not on any peer/)
  // The dirty set on disk already holds it.
  const again = DirtySet.load(dir)
  assert.equal(again.extents.summary().map(x => x.ranges), dirty.extents.summary().map(x => x.ranges))
  // What is left reads on from there.
  const left = []
  for await (const { batch } of j.read(1)) left.push(batch.seq)
  assert.is(left[0], s.droppedThroughSeq + 1)
  await j.close()
})

test('by age: only segments older than the limit, never the newest; never past the backing sync', async () => {
  const { j, dirty, lines } = await setup()
  for (let i = 0; i < 100; i++) j.appendRecords([w(i)], false)
  await j.sync()
  let now = Date.now()
  let floor = 10
  const r = new Retention(j, dirty, { maxAgeMs: 60_000 }, () => floor, l => lines.push(l), () => now)
  await r.check()
  assert.is(r.status().droppedSegments, 0, 'nothing is a minute old yet')
  now += 120_000 // every segment is old now
  await r.check()
  assert.is(r.status().droppedSegments, 0, 'the backing store is synced through 10 only')
  assert.match(r.status().waiting, /synced through sequence 10/)
  floor = Infinity
  await r.check()
  assert.is(j.oldest, null, 'all but the newest went')
  assert.ok(j.bytes > 0)
  assert.is(r.status().waiting, null)
  assert.is(r.status().retain, '1 min')
  await j.close()
})

test.run()
