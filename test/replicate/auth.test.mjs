// timeout: 30
// Authentication, pure and in memory. The MAC binds the secret, the role,
// the group and both nonces in their order: a MAC made for any other
// combination does not verify. The handshake over two in-memory sockets:
// matching sides authenticate; each kind of mismatch fails at both ends with
// its code, and the side that detects it tells the peer first.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { authMac, checkMac, newNonce } from '../../dist/replicate/auth.js'
import { handshake } from '../../dist/replicate/handshake.js'
import { Connection } from '../../dist/replicate/transport.js'
import { encodeFrame } from '../../dist/journal/frame.js'
import { encodeValue } from '../../dist/journal/codec.js'
import { protocolVersion } from '../../dist/replicate/messages.js'
import { socketPair } from '../helpers/socket-pair.mjs'

const secret = Buffer.from('0123456789abcdef-shared')
const other = Buffer.from('0123456789abcdef-sharex')

test('nonces are 32 fresh bytes', () => {
  const a = newNonce(); const b = newNonce()
  assert.is(a.length, 32)
  assert.not.ok(a.equals(b))
})

test('a MAC verifies for exactly its secret, role, group and nonce pair', () => {
  const na = newNonce(); const nb = newNonce(); const nc = newNonce()
  // A (primary, nonce na) proves itself to B (nonce nb).
  const mac = authMac(secret, 'primary', 'g', na, nb)
  assert.is(mac.length, 32)
  assert.ok(checkMac(secret, 'primary', 'g', na, nb, mac), 'the right one verifies')
  const variants = {
    'other secret': [other, 'primary', 'g', na, nb],
    'empty secret': [Buffer.alloc(0), 'primary', 'g', na, nb],
    'other role (reflection to its sender)': [secret, 'secondary', 'g', na, nb],
    'other group': [secret, 'primary', 'h', na, nb],
    'group that is a prefix': [secret, 'primary', 'g\0', na, nb],
    'nonces swapped': [secret, 'primary', 'g', nb, na],
    'other peer nonce (replay on another connection)': [secret, 'primary', 'g', na, nc],
    'other own nonce': [secret, 'primary', 'g', nc, nb]
  }
  for (const [what, args] of Object.entries(variants)) {
    assert.not.ok(checkMac(...args, mac), what)
    // And the MAC that combination would produce differs from this one.
    assert.not.ok(authMac(...args).equals(mac), `${what}: same MAC`)
  }
})

test('role and group cannot be shifted across the separator', () => {
  // "primary\0g\0x" is one (role, group) split; another split must not collide.
  const n1 = newNonce(); const n2 = newNonce()
  assert.not.ok(authMac(secret, 'primary', 'gx', n1, n2).equals(authMac(secret, 'primaryg', 'x', n1, n2)))
})

test('a truncated, extended or flipped MAC does not verify (and does not throw)', () => {
  const na = newNonce(); const nb = newNonce()
  const mac = authMac(secret, 'secondary', 'g', na, nb)
  assert.not.ok(checkMac(secret, 'secondary', 'g', na, nb, mac.subarray(0, 31)))
  assert.not.ok(checkMac(secret, 'secondary', 'g', na, nb, Buffer.concat([mac, Buffer.alloc(1)])))
  assert.not.ok(checkMac(secret, 'secondary', 'g', na, nb, new Uint8Array(0)))
  for (let i = 0; i < 32; i++) {
    const m = Buffer.from(mac); m[i] ^= 1
    assert.not.ok(checkMac(secret, 'secondary', 'g', na, nb, m), `bit flip in byte ${i}`)
  }
})

// ---- handshake over an in-memory socket pair --------------------------------


const vols = [{ name: 'data', kind: 'dir', size: 0 }]
const id = (role, o = {}) => ({ role, group: 'g', node: role === 'primary' ? 'np' : 'ns', volumes: vols, secret, ...o })

/** Both ends of a handshake; resolves to { p, s } each { ok, hello | code, closedWith }. */
async function run (pid, sid) {
  const [x, y] = socketPair()
  const cp = new Connection(x); const cs = new Connection(y)
  const closed = (c) => new Promise(resolve => c.on('close', err => resolve(err)))
  const pc = closed(cp); const sc = closed(cs)
  const settle = (pr) => pr.then(hello => ({ ok: true, hello }), err => ({ ok: false, code: err.code, message: err.message }))
  const [p, s] = await Promise.all([settle(handshake(cp, pid, 3000)), settle(handshake(cs, sid, 3000))])
  if (!p.ok || !s.ok) { p.closedWith = await pc; s.closedWith = await sc } else { cp.close(); cs.close() }
  return { p, s }
}

/** One side failed with `code`; the other learned why (its close reason or failure names the code). */
function bothKnow ({ p, s }, code) {
  assert.not.ok(p.ok && s.ok, 'handshake succeeded')
  for (const [side, r] of [['primary', p], ['secondary', s]]) {
    const seen = `${r.code ?? ''} ${r.message ?? ''} ${r.closedWith?.message ?? ''} ${r.closedWith?.code ?? ''}`
    assert.ok(seen.includes(code), `${side} does not know ${code}: ${seen}`)
  }
}

test('matching sides authenticate and see each other\'s hello', async () => {
  const { p, s } = await run(id('primary'), id('secondary'))
  assert.ok(p.ok && s.ok, JSON.stringify([p, s]))
  assert.is(p.hello.role, 'secondary'); assert.is(p.hello.node, 'ns')
  assert.is(s.hello.role, 'primary'); assert.is(s.hello.node, 'np')
  assert.is(s.hello.proto, protocolVersion)
})

test('no secret on either side: refused, AUTH_FAILED (a secret is required, loopback included)', async () => {
  bothKnow(await run(id('primary', { secret: null }), id('secondary', { secret: null })), 'AUTH_FAILED')
})

test('a hello without auth is refused even by a side with a secret', async () => {
  bothKnow(await run(id('primary'), id('secondary', { secret: Buffer.alloc(0) })), 'AUTH_FAILED')
})

test('different secrets: AUTH_FAILED at both ends', async () => {
  bothKnow(await run(id('primary'), id('secondary', { secret: other })), 'AUTH_FAILED')
})

test('a secret on one side only: AUTH_FAILED at both ends, either way round', async () => {
  bothKnow(await run(id('primary', { secret: null }), id('secondary')), 'AUTH_FAILED')
  bothKnow(await run(id('primary'), id('secondary', { secret: null })), 'AUTH_FAILED')
})

test('other group: GROUP_MISMATCH at both ends', async () => {
  bothKnow(await run(id('primary', { group: 'h' }), id('secondary')), 'GROUP_MISMATCH')
})

test('two primaries or two secondaries: SPLIT_BRAIN', async () => {
  bothKnow(await run(id('primary'), id('primary', { node: 'np2' })), 'SPLIT_BRAIN')
  bothKnow(await run(id('secondary', { node: 'ns2' }), id('secondary')), 'SPLIT_BRAIN')
})

test('same node id at both ends: SPLIT_BRAIN', async () => {
  bothKnow(await run(id('primary', { node: 'same' }), id('secondary', { node: 'same' })), 'SPLIT_BRAIN')
})

test('different volumes (name, kind, image size, order): VOLUME_MISMATCH', async () => {
  for (const v of [
    [{ name: 'date', kind: 'dir', size: 0 }],
    [{ name: 'data', kind: 'image', size: 0 }],
    [...vols, { name: 'disk', kind: 'image', size: 4096 }]
  ]) bothKnow(await run(id('primary', { volumes: v }), id('secondary')), 'VOLUME_MISMATCH')
  const two = (size) => [{ name: 'a', kind: 'dir', size: 0 }, { name: 'disk', kind: 'image', size }]
  bothKnow(await run(id('primary', { volumes: two(4096) }), id('secondary', { volumes: two(8192) })), 'VOLUME_MISMATCH')
  bothKnow(await run(id('primary', { volumes: two(4096) }), id('secondary', { volumes: [...two(4096)].reverse() })), 'VOLUME_MISMATCH')
})

/** A raw peer: the test writes frames by hand to a Connection's socket. */
async function rawAgainst (me, script) {
  const [x, y] = socketPair()
  const conn = new Connection(x)
  const got = []
  let buf = Buffer.alloc(0)
  y.on('data', d => { buf = Buffer.concat([buf, d]) })
  const closed = new Promise(resolve => conn.on('close', resolve))
  const result = handshake(conn, me, 3000).then(h => ({ ok: true, h }), err => ({ ok: false, code: err.code, message: err.message }))
  await script(y, () => buf)
  const r = await result
  await closed
  // Frames the handshake side sent: its hello, maybe an auth, the error.
  const { FrameDecoder } = await import('../../dist/journal/frame.js')
  const { decodeMessage } = await import('../../dist/replicate/messages.js')
  for (const p of new FrameDecoder().push(buf)) got.push(decodeMessage(p))
  return { r, got }
}
const send = (sock, m) => sock.write(encodeFrame(encodeValue(m)))
const tick = () => new Promise(resolve => setTimeout(resolve, 20))

test('version mismatch: VERSION_MISMATCH sent to the peer before the close', async () => {
  const { r, got } = await rawAgainst(id('secondary'), async (y) => {
    send(y, { t: 'hello', proto: protocolVersion + 1, group: 'g', node: 'x', role: 'primary', volumes: vols, nonce: newNonce(), auth: true })
  })
  assert.is(r.code, 'VERSION_MISMATCH')
  assert.is(got[0].t, 'hello')
  const e = got.find(m => m.t === 'error')
  assert.ok(e, JSON.stringify(got.map(m => m.t)))
  assert.is(e.code, 'VERSION_MISMATCH')
  assert.match(e.message, /version/)
})

test('a reflected MAC (the peer sends back our own proof) is AUTH_FAILED', async () => {
  const { r, got } = await rawAgainst(id('secondary'), async (y, buf) => {
    const nonce = newNonce()
    send(y, { t: 'hello', proto: protocolVersion, group: 'g', node: 'x', role: 'primary', volumes: vols, nonce, auth: true })
    await tick()
    // Reflect the secondary's own auth message back to it.
    const { FrameDecoder } = await import('../../dist/journal/frame.js')
    const { decodeMessage } = await import('../../dist/replicate/messages.js')
    const mine = new FrameDecoder().push(buf()).map(p => decodeMessage(p)).find(m => m.t === 'auth')
    assert.ok(mine, 'the secondary sent its proof')
    send(y, { t: 'auth', mac: mine.mac })
  })
  assert.is(r.code, 'AUTH_FAILED')
  assert.is(got.find(m => m.t === 'error')?.code, 'AUTH_FAILED')
})

test('a MAC made with the right secret for another group is AUTH_FAILED', async () => {
  const { r } = await rawAgainst(id('secondary'), async (y, buf) => {
    const nonce = newNonce()
    send(y, { t: 'hello', proto: protocolVersion, group: 'g', node: 'x', role: 'primary', volumes: vols, nonce, auth: true })
    await tick()
    const { FrameDecoder } = await import('../../dist/journal/frame.js')
    const { decodeMessage } = await import('../../dist/replicate/messages.js')
    const hello = new FrameDecoder().push(buf()).map(p => decodeMessage(p)).find(m => m.t === 'hello')
    send(y, { t: 'auth', mac: authMac(secret, 'primary', 'other', nonce, hello.nonce) })
  })
  assert.is(r.code, 'AUTH_FAILED')
})

test('the right MAC by hand authenticates (the test\'s raw client is faithful)', async () => {
  const { r } = await rawAgainst(id('secondary'), async (y, buf) => {
    const nonce = newNonce()
    send(y, { t: 'hello', proto: protocolVersion, group: 'g', node: 'x', role: 'primary', volumes: vols, nonce, auth: true })
    await tick()
    const { FrameDecoder } = await import('../../dist/journal/frame.js')
    const { decodeMessage } = await import('../../dist/replicate/messages.js')
    const hello = new FrameDecoder().push(buf()).map(p => decodeMessage(p)).find(m => m.t === 'hello')
    send(y, { t: 'auth', mac: authMac(secret, 'primary', 'g', nonce, hello.nonce) })
    await tick()
    y.end()
  })
  assert.ok(r.ok, JSON.stringify(r))
})

test('a message other than hello first, or other than auth second, is BAD_MESSAGE', async () => {
  let { r, got } = await rawAgainst(id('secondary'), async (y) => { send(y, { t: 'ping', ts: 1 }) })
  assert.is(r.code, 'BAD_MESSAGE')
  assert.is(got.find(m => m.t === 'error')?.code, 'BAD_MESSAGE');
  ({ r } = await rawAgainst(id('secondary'), async (y) => {
    send(y, { t: 'hello', proto: protocolVersion, group: 'g', node: 'x', role: 'primary', volumes: vols, nonce: newNonce(), auth: true })
    send(y, { t: 'batch', b: Buffer.from([1]) })
  }))
  assert.is(r.code, 'BAD_MESSAGE')
})

test('a peer that closes mid-handshake rejects it (no hang)', async () => {
  const { r } = await rawAgainst(id('secondary'), async (y) => { y.end() })
  assert.not.ok(r.ok)
})

test('a silent peer times the handshake out', async () => {
  const [x, y] = socketPair()
  const conn = new Connection(x)
  y.on('data', () => {})
  const t0 = Date.now()
  const err = await handshake(conn, id('secondary'), 300).then(() => null, e => e)
  assert.is(err?.code, 'TIMEOUT')
  assert.ok(Date.now() - t0 < 2000)
})

test.run()
