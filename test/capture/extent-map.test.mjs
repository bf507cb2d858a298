// The extent map's arithmetic: coalescing, clipping, renames, acks, the
// per-file range bound.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ExtentMap, insert, rangesPerFileMax } from '../../dist/capture/extent-map.js'

const ranges = (m, path = 'f') => m.get(0, path).map(r => [r.start, r.end, r.seq])

test('touching and overlapping writes coalesce, keeping the highest sequence', () => {
  const m = new ExtentMap()
  m.add(0, 'f', 0, 10, 1)
  m.add(0, 'f', 10, 20, 2) // touching: merges
  m.add(0, 'f', 30, 40, 3)
  m.add(0, 'f', 5, 35, 4) // bridges both
  assert.equal(ranges(m), [[0, 40, 4]])
  m.add(0, 'f', 100, 110, 5)
  m.add(0, 'f', 50, 60, 6) // before the last: inserted in order
  assert.equal(ranges(m), [[0, 40, 4], [50, 60, 6], [100, 110, 5]])
})

test('truncate clips, unlink drops, rename moves files and directory contents', () => {
  const m = new ExtentMap()
  m.add(0, 'd/a', 0, 100, 1)
  m.add(0, 'd/b', 50, 60, 2)
  m.add(0, 'other', 0, 10, 3)
  m.clip(0, 'd/a', 40)
  assert.equal(ranges(m, 'd/a'), [[0, 40, 1]])
  m.clip(0, 'd/b', 50)
  assert.equal(ranges(m, 'd/b'), [])
  m.rename(0, 'd', 'e')
  assert.equal(ranges(m, 'e/a'), [[0, 40, 1]])
  assert.equal(ranges(m, 'd/a'), [])
  m.note({ kind: 'unlink', vol: 0, path: 'e/a' }, 9)
  assert.equal(ranges(m, 'e/a'), [])
  assert.equal(ranges(m, 'other'), [[0, 10, 3]], 'other files untouched')
})

test('an ack drops exactly the ranges whose every write is acknowledged', () => {
  const m = new ExtentMap()
  m.add(0, 'f', 0, 10, 1)
  m.add(0, 'f', 20, 30, 5)
  m.add(1, 'g', 0, 10, 3)
  m.ack(3)
  assert.equal(ranges(m), [[20, 30, 5]])
  assert.equal(m.get(1, 'g').length, 0)
  m.ack(5)
  assert.equal(m.summary().every(s => s.ranges === 0), true)
})

test('a file holds at most rangesPerFileMax ranges; merging over-approximates', () => {
  const rs = []
  for (let i = 0; i < rangesPerFileMax + 50; i++) insert(rs, { start: i * 100, end: i * 100 + 10, seq: i })
  assert.ok(rs.length <= rangesPerFileMax)
  // every byte written is still covered
  for (let i = 0; i < rangesPerFileMax + 50; i++) assert.ok(rs.some(r => r.start <= i * 100 && r.end >= i * 100 + 10), `write ${i} covered`)
})

test('JSON round trip', () => {
  const m = new ExtentMap()
  m.add(0, 'a', 0, 5, 1); m.add(2, 'b/c', 10, 20, 7)
  const back = ExtentMap.fromJSON(JSON.parse(JSON.stringify(m.toJSON())))
  assert.equal(back.toJSON(), m.toJSON())
})

test.run()
