// The journal's read buffers (journal/read-buffers.ts): small reads carved
// one after the other from one buffer; a buffer used again only once nobody
// holds a view of it and nothing more is carved from it; larger reads apart.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ReadBuffers, readChunkBytes } from '../../dist/journal/read-buffers.js'

test('small reads share a buffer; it is reused only once every hold on it is released', () => {
  const pool = new ReadBuffers(2)
  const a = pool.take(4096)
  const b = pool.take(4096)
  assert.is(a.buffer, b.buffer, 'carved from the same buffer')
  assert.is(b.byteOffset, a.byteOffset + 4096)
  pool.hold(a) // kept (a recent batch)
  pool.release(a) // the reader moved on
  pool.release(b)
  a.fill(7)
  // Filling the rest of the buffer retires it; the next read needs another
  const rest = pool.take(readChunkBytes - 8192)
  assert.is(rest.buffer, a.buffer)
  pool.release(rest)
  const c = pool.take(4096)
  assert.is.not(c.buffer, a.buffer, 'a held view keeps its buffer from reuse')
  c.fill(9)
  assert.ok(a.every(x => x === 7), 'the held view is intact')
  assert.is(pool.inUse, 2, 'the held buffer, and the one the reader uses')
  pool.release(a)
  pool.release(c)
  assert.is(pool.inUse, 0)
  pool.take(readChunkBytes - 4096) // fills the open one: the next read takes a spare
  const reused = pool.take(4096)
  assert.is(reused.buffer, a.buffer, 'reused once released')
})

test('a read larger than a buffer gets its own, not counted', () => {
  const pool = new ReadBuffers(2)
  const big = pool.take(readChunkBytes + 1)
  assert.is(big.length, readChunkBytes + 1)
  pool.hold(big)
  pool.release(big)
  assert.is(pool.inUse, 0)
})

test.run()
