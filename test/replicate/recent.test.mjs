// The sender's recent batches (replicate/recent.ts): held ones are found by
// their first sequence; noted ones (no payload: the sender was reading from
// disk) are not, yet count toward the bound and the lag as held ones do.
// A held batch the bound lets go is handed to the owner's callback.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RecentBatches } from '../../dist/replicate/recent.js'

const held = (seq, count, bytes, ts) => ({ seq, count, payload: Buffer.alloc(bytes, seq & 255), hash: Buffer.alloc(16), ts })
const noted = (seq, count, bytes, ts) => ({ seq, count, bytes, ts })

test('held and noted batches: lookup, lag and bound', () => {
  const dropped = []
  const r = new RecentBatches(1000, b => dropped.push(b.seq))
  r.push(held(1, 2, 100, 10)) // 1..2
  r.push(noted(3, 1, 300, 20)) // 3
  r.push(held(4, 3, 200, 30)) // 4..6
  assert.is(r.starting(1).payload[0], 1)
  assert.is(r.starting(3), null, 'noted: read from disk')
  assert.is(r.starting(4).payload.length, 200)
  assert.is(r.starting(5), null, 'not a batch start')
  assert.equal(r.after(0), { bytes: 600, oldestTs: 10, complete: true })
  assert.equal(r.after(2), { bytes: 500, oldestTs: 20, complete: true })
  assert.equal(r.after(3), { bytes: 200, oldestTs: 30, complete: true })
  assert.equal(r.after(6), { bytes: 0, oldestTs: null, complete: true })
  // 700 more noted bytes: 1,300 held and noted, over the bound: the oldest go
  // until 1,000 at most are left (a noted batch counts as a held one would)
  r.push(noted(7, 1, 700, 40))
  assert.is(r.starting(1), null)
  assert.equal(dropped, [1], 'a held batch let go is told (its buffer may be reused); a noted one has none')
  assert.equal(r.after(0), { bytes: 900, oldestTs: 30, complete: false })
  assert.is(r.starting(4).payload.length, 200)
})

test('would the sender send the next batch from memory', () => {
  const r = new RecentBatches(1 << 20)
  assert.ok(r.wouldSend(1, 1), 'caught up: everything before it sent')
  r.push(held(1, 2, 100, 10)) // 1..2
  assert.ok(r.wouldSend(1, 3), 'at a held batch: it goes on from memory')
  assert.ok(r.wouldSend(3, 3))
  r.push(noted(3, 1, 100, 20)) // 3: noted
  assert.not.ok(r.wouldSend(3, 4), 'at a noted one: it reads from disk, past what comes now')
  assert.ok(r.wouldSend(4, 4))
})

test.run()
