// What a side changed since a common point (pure): the per-file report,
// the paths a rollback restates, and the checks on what comes off the wire.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChangeCollector, unionChanged, parseReport, parseRollback, reportText } from '../../dist/replicate/divergence.js'

const w = (vol, path, off, n) => ({ kind: 'write', vol, path, off, data: new Uint8Array(n) })

function collect (records) {
  const c = new ChangeCollector(['one', 'disk'])
  records.forEach((r, i) => c.note(r, 10 + i))
  return c
}

test('per file: operations, bytes written, coalesced ranges', () => {
  const c = collect([
    { kind: 'create', vol: 0, path: 'a', mode: 0o644 }, w(0, 'a', 0, 10), w(0, 'a', 10, 10), w(0, 'a', 100, 5),
    w(1, '', 4096, 4096), { kind: 'rename', vol: 0, path: 'b', to: 'c' }, { kind: 'chmod', vol: 0, path: 'd', mode: 0o600 }
  ])
  const r = c.report(10, 16, true)
  assert.is(r.bytesWritten, 4121)
  assert.equal(r.files.map(f => [f.vol, f.path, f.ops, f.bytesWritten, f.ranges]), [
    ['disk', '', ['write'], 4096, [[4096, 8192]]],
    ['one', 'a', ['create', 'write'], 25, [[0, 20], [100, 105]]],
    ['one', 'b', ['rename from'], 0, []],
    ['one', 'c', ['rename to'], 0, []],
    ['one', 'd', ['chmod'], 0, []]
  ])
  assert.equal(parseReport(JSON.stringify(r)), r)
})

test('rollback paths: whole after namespace ops and truncates, ranges after writes; both sides joined', () => {
  const mine = collect([w(0, 'x', 0, 4), { kind: 'truncate', vol: 0, path: 'y', size: 0 }, { kind: 'unlink', vol: 0, path: 'z' }]).changed()
  const theirs = collect([w(0, 'x', 100, 4), w(0, 'y', 0, 1), { kind: 'chown', vol: 0, path: 'q', uid: 1, gid: 1 }]).changed()
  assert.equal(unionChanged(mine, theirs), [
    { vol: 0, path: 'q', whole: false, ranges: [] },
    { vol: 0, path: 'x', whole: false, ranges: [[0, 4], [100, 104]] },
    { vol: 0, path: 'y', whole: true, ranges: [[0, 1]] },
    { vol: 0, path: 'z', whole: true, ranges: [] }
  ])
  const rb = { point: 9, files: unionChanged(mine, theirs) }
  assert.equal(parseRollback(JSON.stringify(rb)), rb)
})

test('bad reports and rollbacks are refused', () => {
  assert.is(parseReport('{'), null)
  assert.is(parseReport(JSON.stringify({ from: 1, to: 2, complete: true, filesOmitted: 0, bytesWritten: 0, files: [{ vol: 'one', path: 'a', ops: ['write'], bytesWritten: -1, ranges: [] }] })), null)
  assert.is(parseRollback(JSON.stringify({ point: 1, files: [{ vol: 0, path: 'a', whole: false, ranges: [[5, 2]] }] })), null)
  assert.is(parseRollback(JSON.stringify({ point: -1, files: [] })), null)
})

test('a report too long for the wire drops files and counts them', () => {
  const c = new ChangeCollector(['one'])
  for (let i = 0; i < 1000; i++) c.note(w(0, `file-${i}-${'x'.repeat(100)}`, 0, 1), i + 1)
  const text = reportText(c.report(1, 1000, true), 20_000)
  const r = JSON.parse(text)
  assert.ok(text.length <= 20_000)
  assert.is(r.files.length + r.filesOmitted, 1000)
})

test.run()
