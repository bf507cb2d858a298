// The pair's standing from two generation histories (pure).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { compareSides } from '../../dist/replicate/pair-state.js'
import { clipHistory, startGeneration, parseHistory } from '../../dist/journal/generations.js'

const g = (id, from) => ({ id, from })
const cmp = (ph, pl, sh, sl) => compareSides({ history: ph, last: pl }, { history: sh, last: sl })

test('no generation in common: unrelated (a new or foreign copy)', () => {
  assert.is(cmp([g('a1', 1)], 10, [g('b1', 1)], 0).kind, 'unrelated')
})

test('same generation: in sync, behind, ahead', () => {
  assert.equal(cmp([g('a', 1)], 10, [g('a', 1)], 10), { kind: 'in-sync', common: g('a', 1), point: 10, primaryPast: 0, secondaryPast: 0 })
  assert.equal(cmp([g('a', 1)], 10, [g('a', 1)], 4), { kind: 'behind', common: g('a', 1), point: 4, primaryPast: 6, secondaryPast: 0 })
  assert.is(cmp([g('a', 1)], 4, [g('a', 1)], 10).kind, 'ahead')
})

test('a promoted secondary: the old primary in sync at the promotion point is behind', () => {
  const b = startGeneration([g('a', 1)], 'b', 21) // promoted at 20
  assert.equal(cmp(b, 20, [g('a', 1)], 20).kind, 'in-sync')
  assert.equal(cmp(b, 35, [g('a', 1)], 20), { kind: 'behind', common: g('a', 1), point: 20, primaryPast: 15, secondaryPast: 0 })
})

test('both went on past the common point: split brain, at the right point', () => {
  const b = startGeneration([g('a', 1)], 'b', 21)
  assert.equal(cmp(b, 30, [g('a', 1)], 25), { kind: 'split', common: g('a', 1), point: 20, primaryPast: 10, secondaryPast: 5 })
  // the old primary also started a generation when it wrote without its peer
  assert.equal(cmp(b, 30, [g('a', 1), g('a2', 22)], 25).point, 20)
})

test('a secondary that adopted generations it has not reached yet claims only what it holds', () => {
  const adopted = [g('a', 1), g('b', 21)]
  assert.equal(clipHistory(adopted, 15), [g('a', 1)])
  assert.equal(cmp([g('a', 1), g('b', 21)], 30, adopted, 15), { kind: 'behind', common: g('a', 1), point: 15, primaryPast: 15, secondaryPast: 0 })
  // failback: the first swap's generation is common, no false split brain
  const a2 = startGeneration([g('a', 1), g('b', 21)], 'c', 41) // A promoted at 40
  assert.equal(cmp(a2, 50, [g('a', 1), g('b', 21)], 40).kind, 'behind')
})

test('parseHistory checks what comes off the wire or the disk', () => {
  assert.equal(parseHistory([{ id: 'ab12', from: 1 }]), [g('ab12', 1)])
  assert.is(parseHistory([]), null)
  assert.is(parseHistory([{ id: 'zz', from: 1 }]), null)
  assert.is(parseHistory([{ id: 'ab', from: 5 }, { id: 'cd', from: 2 }]), null)
  assert.is(parseHistory('x'), null)
})

test.run()
