// The secondary's applied cursor carries a CRC32C: a damaged one is named,
// never read as a place to re-apply from; a cursor written before the check
// existed (9 bytes) still reads.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { encodeCursor, decodeCursor, cursorBytes } from '../../dist/journal/applied-cursor.js'

test('round trip, and every single bit flip is caught', () => {
  const buf = encodeCursor({ applied: 123456789, consistent: true })
  assert.is(buf.length, cursorBytes)
  assert.equal(decodeCursor(buf, buf.length), { applied: 123456789, consistent: true })
  assert.equal(decodeCursor(encodeCursor({ applied: 7, consistent: false }), cursorBytes), { applied: 7, consistent: false })
  for (let bit = 0; bit < cursorBytes * 8; bit++) {
    const b = Buffer.from(buf)
    b[bit >> 3] ^= 1 << (bit & 7)
    assert.type(decodeCursor(b, b.length), 'string', `bit ${bit}`)
  }
})

test('empty: none yet; old 9-byte cursor: read; other lengths: damage', () => {
  assert.is(decodeCursor(Buffer.alloc(14), 0), null)
  const old = Buffer.alloc(9); old.writeBigUInt64BE(42n, 0); old[8] = 1
  assert.equal(decodeCursor(old, 9), { applied: 42, consistent: false })
  assert.match(String(decodeCursor(Buffer.alloc(14), 5)), /5 bytes/)
})

test.run()
