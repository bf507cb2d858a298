// timeout: 30
// Wire messages, pure: decodeMessage accepts every well-formed message of the
// protocol and rejects each malformed one (not CBOR, not a map, unknown type,
// a missing field, a field of the wrong type or out of its bound) with
// BAD_MESSAGE or FRAME_DECODE, never with a crash or a half-checked object.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeMessage, encodeMessage, protocolVersion, manifestEntriesMax } from '../../dist/replicate/messages.js'
import { encodeValue } from '../../dist/journal/codec.js'
import { nameFromBytes } from '../../dist/core/names.js'
import { frameBytesMax, volumesMax, pathBytesMax } from '../../dist/core/limits.js'

const b = (n, fill = 1) => new Uint8Array(n).fill(fill)

// One good instance of every message type.
const good = {
  hello: { t: 'hello', proto: protocolVersion, group: 'g', node: 'n1', role: 'primary', volumes: [{ name: 'data', kind: 'dir', size: 0 }, { name: 'disk', kind: 'image', size: 4096 }], nonce: b(32), auth: true },
  auth: { t: 'auth', mac: b(32) },
  state: { t: 'state', applied: 7, hash: b(16), generation: 'abc', consistent: true },
  rebase: { t: 'rebase', seq: 8, prev: b(16), generation: 'abc', full: false },
  'roll-back': { t: 'roll-back', common: 7, prev: b(16), held: '["8","9@0"]', drop: false },
  manifest: { t: 'manifest', vol: 1, entries: [{ path: 'a/b', type: 'file', size: 5, sums: [b(16)] }, { path: 'd', type: 'dir', size: 0, sums: [] }] },
  'manifest-end': { t: 'manifest-end' },
  batch: { t: 'batch', b: b(10) },
  ack: { t: 'ack', applied: 3 },
  consistent: { t: 'consistent', seq: 9 },
  ping: { t: 'ping', ts: 123 },
  pong: { t: 'pong', ts: 123 },
  error: { t: 'error', code: 'AUTH_FAILED', message: 'no' }
}

function code (fn) {
  try { fn() } catch (err) { return err.code ?? `untyped: ${err.message}` }
  return 'accepted'
}
const rejectsWith = (value, codes, what) => {
  const c = code(() => decodeMessage(encodeValue(value)))
  assert.ok(codes.includes(c), `${what}: got ${c}, want ${codes.join('|')}`)
}

// Plain form for comparison: byte strings as hex, wherever they sit.
const plain = (v) => v instanceof Uint8Array ? Buffer.from(v).toString('hex')
  : Array.isArray(v) ? v.map(plain)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v

test('every message type round-trips through encode/decode', () => {
  for (const [t, m] of Object.entries(good)) {
    const d = decodeMessage(encodeMessage(m))
    assert.equal(plain(d), plain(m), t)
  }
})

test('a state with its optional fields round-trips (a demoted side, its restate digest)', () => {
  const m = { t: 'state', applied: 9, hash: b(16), generation: 'abc', consistent: true, demoted: 9, restated: '{"ranges":[[8,9]],"entries":[]}' }
  assert.equal(plain(decodeMessage(encodeMessage(m))), plain(m))
  rejectsWith({ ...m, demoted: -1 }, ['BAD_MESSAGE'], 'a negative demoted')
  rejectsWith({ ...m, restated: 5 }, ['BAD_MESSAGE'], 'a restated that is not text')
})

test('an ack with what the secondary holds written and on disk round-trips', () => {
  for (const m of [{ t: 'ack', applied: 3, written: 5 }, { t: 'ack', applied: 3, stored: 4 }, { t: 'ack', applied: 3, written: 5, stored: 4 }]) {
    assert.equal(decodeMessage(encodeMessage(m)), m)
  }
  rejectsWith({ t: 'ack', applied: 3, written: -1 }, ['BAD_MESSAGE'], 'a negative written')
  rejectsWith({ t: 'ack', applied: 3, written: 'x' }, ['BAD_MESSAGE'], 'a written that is not a number')
})

test('unknown fields are dropped, not passed on', () => {
  const d = decodeMessage(encodeValue({ ...good.ack, extra: 'x', __proto__x: 1 }))
  assert.equal(Object.keys(d).sort(), ['applied', 't'])
})

test('a "__proto__" key cannot supply the type or fields', () => {
  // Hand-made CBOR: { "__proto__": { "t": "ack", "applied": 1 } }
  const inner = Buffer.concat([Buffer.from([0xa2, 0x61, 0x74, 0x63]), Buffer.from('ack'), Buffer.from([0x67]), Buffer.from('applied'), Buffer.from([0x01])])
  const p = Buffer.concat([Buffer.from([0xa1, 0x69]), Buffer.from('__proto__'), inner])
  assert.is(code(() => decodeMessage(p)), 'BAD_MESSAGE')
  assert.is({}.t, undefined, 'Object.prototype untouched')
})

test('bytes that are not CBOR are FRAME_DECODE', () => {
  for (const p of [Buffer.from([0xff]), Buffer.from([0x1c]), Buffer.from([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xbf])]) {
    const c = code(() => decodeMessage(p))
    assert.ok(c === 'FRAME_DECODE' || c === 'BAD_MESSAGE', `${p.toString('hex')}: ${c}`)
  }
  assert.is(code(() => decodeMessage(Buffer.from([0xff, 0x00]))), 'FRAME_DECODE')
})

test('a payload that is not a map is BAD_MESSAGE', () => {
  for (const v of [1, 'hello', null, true, [good.ack], b(4), -1, 1.5]) rejectsWith(v, ['BAD_MESSAGE'], JSON.stringify(v))
})

test('unknown and missing types are BAD_MESSAGE, with a bounded message', () => {
  for (const t of [undefined, 'hullo', 'HELLO', '', 1, null, ['hello'], { t: 'hello' }, 'constructor', '__proto__', 'toString', 'x'.repeat(100_000)]) {
    let err
    try { decodeMessage(encodeValue(t === undefined ? { a: 1 } : { t })) } catch (e) { err = e }
    assert.ok(err, `type ${String(t).slice(0, 20)} accepted`)
    assert.is(err.code, 'BAD_MESSAGE', String(t).slice(0, 20))
    assert.ok(err.message.length <= 300, 'message bounded')
  }
})

test('each missing field of each type is BAD_MESSAGE', () => {
  for (const [t, m] of Object.entries(good)) {
    for (const k of Object.keys(m)) {
      if (k === 't') continue
      const copy = { ...m }
      delete copy[k]
      rejectsWith(copy, ['BAD_MESSAGE'], `${t} without ${k}`)
    }
  }
})

// Values of the wrong type for each kind of field.
const wrong = {
  uint: ['1', -1, 1.5, 2 ** 53, NaN, Infinity, null, true, b(1), [1], { n: 1 }],
  str: [1, null, true, b(3), ['g'], { s: 'g' }, 'a\0b'],
  bool: [1, 0, 'true', null, b(1), []],
  bytes: ['x'.repeat(32), 1, null, [1, 2, 3], { 0: 1 }, true],
  list: ['x', 1, null, { 0: 1 }, b(2)]
}
const fieldKinds = {
  hello: { proto: 'uint', group: 'str', node: 'str', role: 'str', volumes: 'list', nonce: 'bytes', auth: 'bool' },
  auth: { mac: 'bytes' },
  state: { applied: 'uint', hash: 'bytes', generation: 'str', consistent: 'bool' },
  rebase: { seq: 'uint', prev: 'bytes', generation: 'str', full: 'bool' },
  manifest: { vol: 'uint', entries: 'list' },
  batch: { b: 'bytes' },
  ack: { applied: 'uint' },
  consistent: { seq: 'uint' },
  ping: { ts: 'uint' },
  pong: { ts: 'uint' },
  error: { code: 'str', message: 'str' }
}

test('each field of each type with a wrong-typed value is BAD_MESSAGE', () => {
  let n = 0
  for (const [t, fields] of Object.entries(fieldKinds)) {
    for (const [k, kind] of Object.entries(fields)) {
      for (const v of wrong[kind]) {
        rejectsWith({ ...good[t], [k]: v }, ['BAD_MESSAGE'], `${t}.${k} = ${typeof v} ${String(v).slice(0, 12)}`)
        n++
      }
    }
  }
  assert.ok(n > 100)
})

test('enumerated fields take only their values', () => {
  rejectsWith({ ...good.hello, role: 'tertiary' }, ['BAD_MESSAGE'], 'role')
  rejectsWith({ ...good.hello, volumes: [{ name: 'd', kind: 'block', size: 0 }] }, ['BAD_MESSAGE'], 'volume kind')
  rejectsWith({ ...good.manifest, entries: [{ path: 'a', type: 'fifo', size: 0, sums: [] }] }, ['BAD_MESSAGE'], 'entry type')
})

test('nested shapes are checked: volumes, manifest entries, sums', () => {
  for (const vol of [null, 'data', [], b(3), { kind: 'dir', size: 0 }, { name: 'd', kind: 'dir' }, { name: 'd', kind: 'dir', size: -1 }, { name: 'x'.repeat(65), kind: 'dir', size: 0 }]) {
    rejectsWith({ ...good.hello, volumes: [vol] }, ['BAD_MESSAGE'], `volume ${JSON.stringify(vol)}`)
  }
  for (const e of [null, 'a', { path: 'a', type: 'file', size: 0 }, { path: 'a', type: 'file', size: 0, sums: [b(15)] }, { path: 'a', type: 'file', size: 0, sums: ['x'.repeat(16)] }, { path: 1, type: 'file', size: 0, sums: [] }]) {
    rejectsWith({ ...good.manifest, entries: [e] }, ['BAD_MESSAGE'], `entry ${JSON.stringify(e)}`)
  }
})

test('sizes and counts over their bounds are BAD_MESSAGE', () => {
  rejectsWith({ ...good.hello, nonce: b(31) }, ['BAD_MESSAGE'], 'short nonce')
  rejectsWith({ ...good.hello, nonce: b(33) }, ['BAD_MESSAGE'], 'long nonce')
  rejectsWith({ ...good.auth, mac: b(31) }, ['BAD_MESSAGE'], 'short mac')
  rejectsWith({ ...good.auth, mac: b(64) }, ['BAD_MESSAGE'], 'long mac')
  rejectsWith({ ...good.state, hash: b(32) }, ['BAD_MESSAGE'], 'long hash')
  rejectsWith({ ...good.rebase, prev: b(0) }, ['BAD_MESSAGE'], 'empty prev')
  rejectsWith({ ...good.batch, b: b(0) }, ['BAD_MESSAGE'], 'empty batch')
  rejectsWith({ ...good.batch, b: b(frameBytesMax + 1) }, ['BAD_MESSAGE'], 'oversize batch')
  rejectsWith({ ...good.hello, group: 'g'.repeat(256) }, ['BAD_MESSAGE'], 'long group')
  rejectsWith({ ...good.hello, volumes: Array.from({ length: volumesMax + 1 }, (_, i) => ({ name: `v${i}`, kind: 'dir', size: 0 })) }, ['BAD_MESSAGE'], 'too many volumes')
  rejectsWith({ ...good.manifest, vol: volumesMax }, ['BAD_MESSAGE'], 'manifest volume out of range')
  rejectsWith({ ...good.manifest, entries: Array.from({ length: manifestEntriesMax + 1 }, (_, i) => ({ path: `f${i}`, type: 'dir', size: 0, sums: [] })) }, ['BAD_MESSAGE'], 'too many entries')
  rejectsWith({ ...good.manifest, entries: [{ path: 'p'.repeat(pathBytesMax + 1), type: 'dir', size: 0, sums: [] }] }, ['BAD_MESSAGE'], 'long path')
  rejectsWith({ ...good.error, message: 'm'.repeat(4097) }, ['BAD_MESSAGE'], 'long error text')
  rejectsWith({ ...good.error, code: 'C'.repeat(65) }, ['BAD_MESSAGE'], 'long error code')
  // Bounds are inclusive at their limits.
  decodeMessage(encodeValue({ ...good.hello, group: 'g'.repeat(255) }))
  decodeMessage(encodeValue({ ...good.manifest, vol: volumesMax - 1 }))
})

test('verify paths, names and symlink targets that are not UTF-8 travel as their bytes', () => {
  const n80 = nameFromBytes(Buffer.alloc(255, 0x80))
  const ye8 = nameFromBytes(Buffer.from([0x79, 0xe8]))
  const entry = { type: 'symlink', mode: 0o120777, uid: 0, gid: 0, size: 0, nlink: 1, link: 0, target: nameFromBytes(Buffer.from([0x74, 0xff])), xattrs: [] }
  const req = { t: 'verify', id: 1, at: 5, items: [{ vol: 0, path: `d/${n80}`, entry: true, list: true, off: 0, len: 0, block: 65536 }] }
  const ans = { t: 'verified', id: 1, at: 5, missed: false, consistent: true, answers: [{ entry, names: [n80, ye8, 'plain'], more: false, sums: [] }] }
  for (const m of [req, ans]) assert.equal(decodeMessage(encodeMessage(m)), m, m.t)
  // Bytes on the wire: a name is at most 255 of them and holds no slash.
  const bad = (names) => ({ ...ans, answers: [{ entry: null, names, more: false, sums: [] }] })
  rejectsWith(bad([Buffer.alloc(256, 0x80)]), ['BAD_MESSAGE'], '256-byte name')
  rejectsWith(bad([Buffer.from([0x61, 0x2f, 0x80])]), ['BAD_MESSAGE'], 'a name with a slash')
  rejectsWith({ ...req, items: [{ ...req.items[0], path: Buffer.from([0x61, 0, 0x80]) }] }, ['BAD_MESSAGE'], 'a path with NUL')
})

test('a string field with a multi-byte character is bounded in bytes, not characters', () => {
  rejectsWith({ ...good.hello, group: 'é'.repeat(128) }, ['BAD_MESSAGE'], '256 bytes of 128 chars')
  decodeMessage(encodeValue({ ...good.hello, group: 'é'.repeat(127) }))
})

test('random byte mutations of good messages never escape as untyped errors', () => {
  let seed = 42
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
  let accepted = 0
  for (let i = 0; i < 20_000; i++) {
    const m = Object.values(good)[rnd(12)]
    const p = Buffer.from(encodeMessage(m))
    for (let j = 0, k = 1 + rnd(3); j < k; j++) p[rnd(p.length)] = rnd(256)
    const cut = rnd(4) === 0 ? p.subarray(0, rnd(p.length)) : p
    const c = code(() => decodeMessage(cut))
    if (c === 'accepted') { accepted++; continue }
    assert.ok(c === 'BAD_MESSAGE' || c === 'FRAME_DECODE', `mutation ${i} of ${m.t}: ${c} (${cut.toString('hex')})`)
  }
  assert.ok(accepted < 20_000)
})

test.run()
