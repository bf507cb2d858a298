// How a fallen-back sync mode comes back (capture/sync-resume.ts): at once
// when the backlog drains within a quarter of the sync timeout at the pace
// the secondary acknowledges; else with a window that holds writers to that
// pace and shrinks at half of it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SyncResume } from '../../dist/capture/sync-resume.js'

test('pace unknown: wait; a backlog within the mark: sync at once', () => {
  const r = new SyncResume(2000)
  assert.is(r.resumeWindow(100, 5000, 0), null, 'no pace yet')
  assert.is(r.resumeWindow(400, 900, 300), 0, '1 record/ms, 2 s timeout: a mark of 500, 500 behind')
  assert.is(r.mark, 500)
  assert.is(r.resuming, false)
})

test('a backlog past the mark: a window of the rest, shrinking at half the pace', () => {
  const r = new SyncResume(2000)
  r.resumeWindow(0, 5000, 0)
  assert.is(r.resumeWindow(300, 5300, 300), 4500, '5000 behind, 500 of it drains soon enough')
  assert.ok(r.resuming)
  assert.is(r.windowAt(1300), 4000, '1 s later: 500 less')
  assert.is(r.windowAt(300 + 9000), 0, 'gone after 9 s')
  assert.is(r.resuming, false)
})

test('nothing left: sync at once; a stalled secondary: no pace, no resume; a fallback measures afresh', () => {
  assert.is(new SyncResume(2000).resumeWindow(10, 10, 0), 0)
  const s = new SyncResume(2000)
  s.resumeWindow(10, 20, 0)
  assert.is(s.resumeWindow(10, 11, 1000), null, 'no progress: pace 0')
  const r = new SyncResume(2000)
  r.resumeWindow(0, 10_000, 0); r.resumeWindow(3000, 10_000, 300)
  assert.ok(r.resuming)
  r.reset()
  assert.is(r.resuming, false)
  assert.is(r.mark, 0)
})

test.run()
