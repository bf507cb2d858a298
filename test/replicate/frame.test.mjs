// timeout: 60
// Framing on the wire, in memory. FrameDecoder yields the same payloads
// however the byte stream is cut (every split offset, every pair of splits
// over a short stream, byte by byte), and rejects a bad CRC or an oversize
// length as soon as the header shows it (before buffering the body). A
// Connection that meets a bad frame tells its peer why (an error message)
// and closes; valid messages are delivered in order.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FrameDecoder, encodeFrame, checkFrameAt } from '../../dist/journal/frame.js'
import { ReadBuffers, readChunkBytes } from '../../dist/journal/read-buffers.js'
import { encodeValue } from '../../dist/journal/codec.js'
import { Connection } from '../../dist/replicate/transport.js'
import { batchMessagePrefix, decodeMessage } from '../../dist/replicate/messages.js'
import { frameBytesMax } from '../../dist/core/limits.js'
import { socketPair } from '../helpers/socket-pair.mjs'

// Payloads of assorted sizes, empty and large included.
const payloads = [0, 1, 7, 8, 9, 100, 300, 3].map((n, i) => Buffer.alloc(n, i + 1).map((x, j) => (x * 31 + j) & 0xff))
const stream = Buffer.concat(payloads.map(p => encodeFrame(p)))
const hex = (list) => list.map(p => p.toString('hex'))

function feed (chunks, max) {
  const d = new FrameDecoder(max)
  const out = []
  for (const c of chunks) out.push(...d.push(c))
  return { out, pending: d.pending }
}

test('whole stream in one push', () => {
  const { out, pending } = feed([stream])
  assert.equal(hex(out), hex(payloads))
  assert.is(pending, 0)
})

test('every single split offset gives the same payloads', () => {
  const want = hex(payloads)
  for (let i = 0; i <= stream.length; i++) {
    const { out, pending } = feed([stream.subarray(0, i), stream.subarray(i)])
    assert.equal(hex(out), want, `split at ${i}`)
    assert.is(pending, 0, `split at ${i}`)
  }
})

test('a large frame (over one socket read) split at every 97th offset and around its header', () => {
  const big = [Buffer.from('x'), Buffer.alloc(200_000).map((_, j) => (j * 7) & 0xff), Buffer.from('y')]
  const s = Buffer.concat(big.map(p => encodeFrame(p)))
  const want = hex(big)
  const offs = new Set()
  for (let i = 0; i <= s.length; i += 97) offs.add(i)
  for (const b of [9, 9 + 8, s.length - 9]) for (let k = -9; k <= 9; k++) offs.add(b + k)
  for (const i of offs) {
    const { out, pending } = feed([s.subarray(0, i), s.subarray(i)])
    assert.equal(hex(out), want, `split at ${i}`)
    assert.is(pending, 0)
  }
})

test('every pair of split offsets over a stream of small frames', () => {
  const small = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world'), Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8])]
  const s = Buffer.concat(small.map(p => encodeFrame(p)))
  const want = hex(small)
  for (let i = 0; i <= s.length; i++) {
    for (let j = i; j <= s.length; j++) {
      const { out, pending } = feed([s.subarray(0, i), s.subarray(i, j), s.subarray(j)])
      assert.equal(hex(out), want, `splits ${i},${j}`)
      assert.is(pending, 0)
    }
  }
})

test('byte by byte, with pending counting the partial frame', () => {
  const d = new FrameDecoder()
  const out = []
  let boundary = 0
  const ends = new Set()
  for (const p of payloads) { boundary += 8 + p.length; ends.add(boundary) }
  for (let i = 0; i < stream.length; i++) {
    out.push(...d.push(stream.subarray(i, i + 1)))
    if (ends.has(i + 1)) assert.is(d.pending, 0, `at frame end ${i + 1}`)
    else assert.ok(d.pending > 0, `inside a frame at ${i + 1}`)
  }
  assert.equal(hex(out), hex(payloads))
})

test('payloads handed out stay intact after later pushes (no reused buffer)', () => {
  const d = new FrameDecoder()
  const got = []
  for (let i = 0; i < stream.length; i += 5) got.push(...d.push(Buffer.from(stream.subarray(i, i + 5))))
  assert.equal(hex(got), hex(payloads))
})

test('payloads that start with the given prefix and lie across chunks are joined into the buffers given', () => {
  const buffers = new ReadBuffers(2)
  const prefix = Buffer.from('BATCH:')
  const frames = [Buffer.concat([prefix, Buffer.alloc(3000, 1)]), Buffer.alloc(3000, 2), Buffer.concat([prefix, Buffer.alloc(5, 3)])]
  const s = Buffer.concat(frames.map(p => encodeFrame(p)))
  const want = hex(frames)
  // Every split offset, those inside a prefix included.
  for (let i = 0; i <= s.length; i++) {
    const d = new FrameDecoder(frameBytesMax, { buffers, prefix })
    const out = [...d.push(s.subarray(0, i)), ...d.push(s.subarray(i))]
    assert.equal(hex(out), want, `split at ${i}`)
    // Joined into the buffers given: a prefixed frame the split cuts, never
    // the unprefixed one (the given buffers are readChunkBytes long).
    const cut = (k) => { const start = frames.slice(0, k).reduce((n, p) => n + 8 + p.length, 0); return i > start + 8 && i < start + 8 + frames[k].length }
    for (const k of [0, 1, 2]) assert.is(out[k].buffer.byteLength === readChunkBytes, k !== 1 && cut(k), `split at ${i}, frame ${k}`)
    for (const p of out) buffers.release(p)
    assert.is(buffers.inUse, 0)
  }
})

test('a joined payload released is read over by the next; one held is not', () => {
  const buffers = new ReadBuffers(2)
  const prefix = Buffer.from('B')
  const d = new FrameDecoder(frameBytesMax, { buffers, prefix })
  const frameOf = (n, v) => encodeFrame(Buffer.concat([prefix, Buffer.alloc(n, v)]))
  const push = (f) => [...d.push(f.subarray(0, 100)), ...d.push(f.subarray(100))]
  const [a] = push(frameOf(3 * 1024 * 1024, 1)) // most of a read buffer
  const [b] = push(frameOf(3 * 1024 * 1024, 2)) // does not fit beside it: the next buffer
  assert.ok(a.buffer !== b.buffer)
  buffers.release(a)
  const [c] = push(frameOf(3 * 1024 * 1024, 3)) // a's buffer again
  assert.ok(c.buffer === a.buffer, 'read into the buffer given back')
  assert.ok(b.subarray(1).every(x => x === 2), 'the one still held is intact')
  assert.ok(c.subarray(1).every(x => x === 3))
})

test('a bad CRC is FRAME_CRC at every split offset', () => {
  const bad = Buffer.from(stream)
  const second = 8 + payloads[0].length
  bad[second + 8 + 0] ^= 0xff // first payload byte of the second frame
  for (let i = 0; i <= bad.length; i += 7) {
    const d = new FrameDecoder()
    let err = null
    const out = []
    try { for (const c of [bad.subarray(0, i), bad.subarray(i)]) out.push(...d.push(c)) } catch (e) { err = e }
    assert.is(err?.code, 'FRAME_CRC', `split ${i}`)
    assert.ok(out.length <= 1, 'nothing after the bad frame')
  }
  // A flipped CRC byte (header) is the same error.
  const h = Buffer.from(stream); h[5] ^= 1
  assert.throws(() => new FrameDecoder().push(h), e => e.code === 'FRAME_CRC')
})

test('an oversize length is FRAME_TOO_LARGE from the header alone', () => {
  for (const len of [frameBytesMax + 1, 0xfffffff0, 0xffffffff]) {
    const h = Buffer.alloc(8); h.writeUInt32BE(len, 0)
    const d = new FrameDecoder()
    // The first 7 bytes are not enough to judge; the 8th is.
    assert.equal(d.push(h.subarray(0, 7)), [])
    assert.throws(() => d.push(h.subarray(7)), e => e.code === 'FRAME_TOO_LARGE' && /exceeds/.test(e.message), `len ${len}`)
  }
  // At the limit is fine (header only: still waiting for the body).
  const h = Buffer.alloc(8); h.writeUInt32BE(frameBytesMax, 0)
  assert.equal(new FrameDecoder().push(h), [])
  // A smaller configured bound applies.
  assert.throws(() => new FrameDecoder(16).push(encodeFrame(Buffer.alloc(17))), e => e.code === 'FRAME_TOO_LARGE')
  assert.is(new FrameDecoder(16).push(encodeFrame(Buffer.alloc(16))).length, 1)
})

test('checkFrameAt agrees with the stream decoder', () => {
  let off = 0
  for (const p of payloads) {
    const r = checkFrameAt(stream, off)
    assert.ok(r.ok)
    assert.is(r.payload.toString('hex'), p.toString('hex'))
    off = r.end
  }
  assert.equal(checkFrameAt(stream, off), { ok: false, reason: 'short', end: off })
  assert.is(checkFrameAt(encodeFrame(Buffer.alloc(10)).subarray(0, 12), 0).reason, 'short')
  const big = Buffer.alloc(8); big.writeUInt32BE(0xfffffff0, 0)
  assert.is(checkFrameAt(big, 0).reason, 'too-large')
})

// ---- a Connection meeting bad frames ----------------------------------------


/** Sends `bytes` (in `chunks` pieces) to a Connection; returns what it
 *  delivered, why it closed, and the messages it sent back. */
async function against (bytes, chunks = 1) {
  const [x, y] = socketPair()
  const conn = new Connection(x)
  const delivered = []
  conn.on('message', m => delivered.push(m))
  let back = Buffer.alloc(0)
  y.on('data', d => { back = Buffer.concat([back, d]) })
  const closed = new Promise(resolve => conn.on('close', resolve))
  const step = Math.ceil(bytes.length / chunks)
  for (let i = 0; i < bytes.length; i += step) y.write(bytes.subarray(i, i + step))
  const timer = setTimeout(() => y.end(), 500)
  const why = await closed
  clearTimeout(timer)
  const replies = new FrameDecoder().push(back).map(p => decodeMessage(p))
  return { delivered, why, replies }
}
const frame = (m) => encodeFrame(encodeValue(m))

test('valid messages are delivered in order, however the bytes arrive', async () => {
  const msgs = [{ t: 'ping', ts: 1 }, { t: 'ack', applied: 5 }, { t: 'batch', b: Buffer.alloc(1000, 7) }, { t: 'manifest-end' }]
  const bytes = Buffer.concat(msgs.map(frame))
  for (const chunks of [1, 3, bytes.length]) {
    const { delivered, why, replies } = await against(bytes, chunks)
    assert.equal(delivered.map(m => m.t), msgs.map(m => m.t), `${chunks} chunks`)
    assert.is(why, null, 'clean end')
    assert.equal(replies, [])
  }
})

test('a Connection joins batches into buffers it reads into again once released', async () => {
  const [x, y] = socketPair()
  const conn = new Connection(x)
  conn.authenticated() // full-size frames
  const got = []
  conn.on('message', m => got.push(m))
  // As the sender writes them (transport.ts sendBatch).
  const batch = (v) => { const b = Buffer.alloc(3 * 1024 * 1024, v); return encodeFrame(Buffer.concat([batchMessagePrefix(b.length), b])) }
  for (const v of [1, 2]) { const f = batch(v); for (let i = 0; i < f.length; i += 64 * 1024) y.write(f.subarray(i, i + 64 * 1024)) }
  while (got.length < 2) await new Promise(resolve => setImmediate(resolve))
  conn.releaseBatch(got[0].b)
  const f = batch(3)
  for (let i = 0; i < f.length; i += 64 * 1024) y.write(f.subarray(i, i + 64 * 1024))
  while (got.length < 3) await new Promise(resolve => setImmediate(resolve))
  assert.ok(got[2].b.buffer === got[0].b.buffer, 'the released batch\'s buffer read into again')
  assert.ok(got[1].b.every(v => v === 2) && got[2].b.every(v => v === 3), 'the held one intact')
  conn.close()
})

const cases = {
  'bad CRC': [() => { const f = frame({ t: 'ping', ts: 1 }); f[9] ^= 0xff; return f }, 'FRAME_CRC'],
  'oversize length 0xFFFFFFF0': [() => { const h = Buffer.alloc(8); h.writeUInt32BE(0xfffffff0, 0); return h }, 'FRAME_TOO_LARGE'],
  'not CBOR': [() => encodeFrame(Buffer.from([0xff, 0xff])), 'FRAME_DECODE'],
  'unknown message type': [() => frame({ t: 'format-disk', all: true }), 'BAD_MESSAGE'],
  'known type, wrong field types': [() => frame({ t: 'ack', applied: 'all of it' }), 'BAD_MESSAGE'],
  'not a map': [() => frame(['ping', 1]), 'BAD_MESSAGE']
}

for (const [what, [make, code]] of Object.entries(cases)) {
  test(`${what}: an error message ${code} goes back, then the connection closes`, async () => {
    // Nothing after the bad frame is delivered. (A good message in the same
    // chunk before a frame the decoder throws on may be lost with it: the
    // connection ends either way.)
    const bytes = Buffer.concat([frame({ t: 'ping', ts: 1 }), make(), frame({ t: 'ping', ts: 2 })])
    for (const chunks of [1, 5]) {
      const { delivered, why, replies } = await against(bytes, chunks)
      assert.ok(delivered.every(m => m.ts === 1), `${what}: delivered ${JSON.stringify(delivered)}`)
      assert.is(why?.code, code, `${what}: close reason ${why?.message}`)
      assert.is(replies.length, 1, `${what}: replies ${JSON.stringify(replies)}`)
      assert.is(replies[0].t, 'error')
      assert.is(replies[0].code, code)
      assert.ok(replies[0].message.length > 0)
    }
  })
}

test('an error message from the peer closes with PEER_ERROR naming its code', async () => {
  const { delivered, why } = await against(frame({ t: 'error', code: 'AUTH_FAILED', message: 'go away' }))
  assert.equal(delivered, [])
  assert.is(why?.code, 'PEER_ERROR')
  assert.match(why.message, /AUTH_FAILED: go away/)
})

test.run()
