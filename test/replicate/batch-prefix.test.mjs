// The sender writes {t:'batch', b: payload} as a hand-made CBOR prefix next
// to the payload (no copy); it must decode as the same message, for every
// byte-string length form, inside a frame whose CRC covers both parts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { batchMessagePrefix, decodeMessage } from '../../dist/replicate/messages.js'
import { frameHeaderOf, FrameDecoder } from '../../dist/journal/frame.js'

test('prefix + payload decodes as the batch message, at every length form', () => {
  for (const n of [1, 23, 24, 255, 256, 65535, 65536, 1 << 20]) {
    const payload = Buffer.alloc(n, n & 0xff)
    const prefix = batchMessagePrefix(n)
    const m = decodeMessage(Buffer.concat([prefix, payload]))
    assert.is(m.t, 'batch')
    assert.ok(Buffer.from(m.b).equals(payload), `length ${n}`)
    const frame = Buffer.concat([frameHeaderOf([prefix, payload]), prefix, payload])
    const [got] = new FrameDecoder().push(frame)
    assert.ok(got.equals(Buffer.concat([prefix, payload])), `frame of ${n}`)
  }
})

test.run()
