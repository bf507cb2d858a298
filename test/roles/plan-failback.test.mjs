// timeout: 30
// The primary's decision about an old primary past the common point
// (replicate/plan.ts planRollBack), with a stand-in journal: its restate
// held here is dropped; on a demoted side its own writes are rolled back;
// anything else (not demoted, a restate that differs, writes made in a
// generation of its own) stays a split brain.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { planSession } from '../../dist/replicate/plan.js'

const g = (id, from) => ({ id, from })
const hash = Buffer.alloc(16, 7)
// This side (B): promoted at 21 (the old primary A's generation 'a' up to 20), wrote to 30.
const journal = { checkpoint: { generation: 'b', history: [g('a', 1), g('b', 21)], acked: 20 }, hashAt: async () => hash }
const me = (heldSeqs = null) => ({
  journal, lastAssigned: 30, acked: 20, tracking: false,
  held: async entries => entries.map(e => heldSeqs === null || heldSeqs.includes(e.seq))
})
const w = (seq, off = 0) => ({ seq, k: 'w', vol: 0, path: 'f', off, len: 4, h: 'x' })
// A: journalled to 23 (21..23 never reached B), its recovery restated 24..25.
const digest = (ranges, entries) => JSON.stringify({ ranges, entries })
const state = (o = {}) => ({ t: 'state', applied: 25, hash, generation: 'a', consistent: true, history: [g('a', 1)], ...o })

test('a restate held here, all A has past the point: dropped there, nothing rolled back', async () => {
  const p = await planSession(me(), state({ applied: 22, restated: digest([[21, 22]], [w(21), w(21, 65536), w(22)]) }))
  assert.is(p.kind, 'roll-back')
  assert.is(p.drop, true)
  assert.is(p.point, 20)
  assert.equal(p.held, ['21@0', '21@65536', '22@0'])
  assert.ok(p.prev.equals(hash))
})

test('a restate not all held, not demoted: a split brain', async () => {
  const p = await planSession(me([21]), state({ applied: 22, restated: digest([[21, 22]], [w(21), w(22)]) }))
  assert.is(p.kind, 'split')
})

test('own writes past the point, not demoted: a split brain, as before', async () => {
  assert.is((await planSession(me(), state())).kind, 'split')
  assert.is((await planSession(me(), state({ restated: digest([[24, 25]], [w(24), w(25)]) }))).kind, 'split')
})

test('own writes past the point on a demoted side: rolled back there, the held restate not counted', async () => {
  const p = await planSession(me([24]), state({ demoted: 25, restated: digest([[24, 25]], [w(24), w(25)]) }))
  assert.is(p.kind, 'roll-back')
  assert.is(p.drop, false)
  assert.equal(p.held, ['24@0'])
  assert.match(p.why, /demoted at sequence 25/)
})

test('a demote record older than what the side holds, or writes in a generation of its own: a split brain', async () => {
  assert.is((await planSession(me(), state({ demoted: 23 }))).kind, 'split', 'it took sequences after the demote')
  const alone = state({ demoted: 25, history: [g('a', 1), g('alone', 22)] })
  assert.is((await planSession(me(), alone)).kind, 'split', 'written while it knew it was alone')
})

test('the new primary wrote nothing yet (the old one is ahead): the same rules', async () => {
  const idle = { ...me(), lastAssigned: 20 }
  assert.is((await planSession(idle, state({ demoted: 25 }))).kind, 'roll-back')
  assert.is((await planSession(idle, state())).kind, 'split')
})

test.run()
