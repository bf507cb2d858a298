// timeout: 90
// Hostile bytes to a real `replfs serve` from a raw TCP client: a bad CRC,
// an oversize length, bytes that are not CBOR, valid CBOR of an unknown
// message type, a known type with wrong field types, a hello of another
// protocol version, of another group, with other volumes, a bad MAC, a
// reflected MAC, a batch before any hello, a frame cut short. For each: an
// error message with its code comes back before the close, the serve log
// names the code, the daemon stays alive; at the end a normal primary still
// connects and replicates, and nothing outside the volumes was written.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { bounded } from '../helpers/mount.mjs'
import {
  makeEnv, startServe, raw, hello, waitFor, sleep, assertStillServes, encodeFrame, encodeValue, newNonce
} from './env.mjs'
import { authMac } from '../../dist/replicate/auth.js'

const PORT = 17200
let E, serve

test.before(async () => {
  E = makeEnv('faults-frames')
  serve = await startServe(E, PORT)
})
test.after(async () => {
  await serve?.stop()
  E?.cleanupOutside()
})

/** Sends what `act` sends; expects an error message `code` back, the
 *  close, the code in serve's log and serve alive. */
async function expectRefused (what, code, act) {
  const logFrom = serve.err.length
  const c = await raw(PORT)
  try {
    await act(c)
    const err = await c.waitFor(m => m.t === 'error' || m.t === 'undecodable').catch(e => { throw new Error(`${what}: no error message back; got ${JSON.stringify(c.frames().map(m => m.t))} (${e.message})`) })
    assert.is(err.t, 'error', `${what}: ${JSON.stringify(err)}`)
    assert.is(err.code, code, `${what}: error message ${JSON.stringify(err)}`)
    assert.ok(err.message.length > 5, `${what}: the error says why`)
    assert.ok(await c.waitClosed(), `${what}: serve did not close the connection`)
    await waitFor(() => serve.err.slice(logFrom).includes(code), 3000, `${what}: ${code} in the serve log`)
      .catch(() => assert.unreachable(`${what}: serve log does not name ${code}:\n${serve.err.slice(logFrom)}`))
  } finally {
    c.socket.destroy()
  }
  assert.is(serve.exited, null, `${what}: serve exited: ${serve.err}`)
  return serve.err.slice(logFrom)
}

test('(a) a frame with a bad CRC: FRAME_CRC', bounded(10_000, async () => {
  await expectRefused('bad CRC', 'FRAME_CRC', async c => {
    const f = encodeFrame(encodeValue(hello()))
    f[4] ^= 0xff
    c.send(f)
  })
  // Corrupt payload byte instead of header byte.
  await expectRefused('bad payload byte', 'FRAME_CRC', async c => {
    const f = encodeFrame(encodeValue(hello()))
    f[f.length - 3] ^= 0x01
    c.send(f)
  })
}))

test('(b) a length over the maximum: FRAME_TOO_LARGE, without waiting for the body', bounded(10_000, async () => {
  for (const len of [0xfffffff0, 0xffffffff, 16 * 1024 * 1024 + 1]) {
    await expectRefused(`length ${len}`, 'FRAME_TOO_LARGE', async c => {
      const h = Buffer.alloc(8 + 64, 0xab); h.writeUInt32BE(len, 0)
      c.send(h)
    })
  }
}))

test('(c) valid CBOR of an unknown message type, and bytes that are not CBOR', bounded(10_000, async () => {
  await expectRefused('unknown type', 'BAD_MESSAGE', async c => c.sendMsg({ t: 'format-disk', now: true }))
  await expectRefused('no type', 'BAD_MESSAGE', async c => c.sendMsg({ hello: 1 }))
  await expectRefused('not a map', 'BAD_MESSAGE', async c => c.sendMsg(['hello', 1]))
  await expectRefused('not CBOR', 'FRAME_DECODE', async c => c.send(encodeFrame(Buffer.from([0xff, 0xfe, 0xfd]))))
}))

test('(d) valid CBOR of a known type with wrong field types: BAD_MESSAGE', bounded(15_000, async () => {
  for (const [what, m] of [
    ['proto as string', hello({ proto: '1' })],
    ['nonce as string', hello({ nonce: 'x'.repeat(32) })],
    ['short nonce', hello({ nonce: newNonce().subarray(0, 8) })],
    ['volumes as map', hello({ volumes: { data: 'dir' } })],
    ['auth as number', hello({ auth: 1 })],
    ['role unknown', hello({ role: 'master' })],
    ['group with NUL', hello({ group: 'g\0' })],
    ['negative proto', hello({ proto: -1 })],
    ['batch with string payload', { t: 'batch', b: 'records' }],
    ['ack with float', { t: 'ack', applied: 1.5 }]
  ]) await expectRefused(what, 'BAD_MESSAGE', async c => c.sendMsg(m))
}))

test('(e) a hello with another protocol version: VERSION_MISMATCH before the close', bounded(10_000, async () => {
  const log = await expectRefused('version 1', 'VERSION_MISMATCH', async c => c.sendMsg(hello({ proto: 1 })))
  assert.match(log, /protocol version 1/)
  await expectRefused('version 0', 'VERSION_MISMATCH', async c => c.sendMsg(hello({ proto: 0 })))
}))

test('(f) a hello for another group: GROUP_MISMATCH', bounded(10_000, async () => {
  const log = await expectRefused('group other', 'GROUP_MISMATCH', async c => c.sendMsg(hello({ group: 'other' })))
  assert.match(log, /other/)
}))

test('hello with other volumes, or as a secondary: VOLUME_MISMATCH, SPLIT_BRAIN', bounded(10_000, async () => {
  await expectRefused('volumes', 'VOLUME_MISMATCH', async c => c.sendMsg(hello({ volumes: [{ name: 'data', kind: 'dir', size: 0 }] })))
  await expectRefused('image size', 'VOLUME_MISMATCH', async c => c.sendMsg(hello({ volumes: [{ name: 'data', kind: 'dir', size: 0 }, { name: 'disk', kind: 'image', size: 4096 }] })))
  await expectRefused('role', 'SPLIT_BRAIN', async c => c.sendMsg(hello({ role: 'secondary' })))
  await expectRefused('no auth offered', 'AUTH_FAILED', async c => c.sendMsg(hello({ auth: false })))
}))

test('(g) a client that completes the hello but sends a bad MAC: AUTH_FAILED', bounded(15_000, async () => {
  await expectRefused('random MAC', 'AUTH_FAILED', async c => {
    c.sendMsg(hello())
    await c.waitFor(m => m.t === 'auth')
    c.sendMsg({ t: 'auth', mac: newNonce() })
  })
  await expectRefused('reflected MAC', 'AUTH_FAILED', async c => {
    c.sendMsg(hello())
    const theirs = await c.waitFor(m => m.t === 'auth')
    c.sendMsg({ t: 'auth', mac: theirs.mac })
  })
  await expectRefused('MAC with the wrong secret', 'AUTH_FAILED', async c => {
    const h = hello()
    c.sendMsg(h)
    const sh = await c.waitFor(m => m.t === 'hello')
    c.sendMsg({ t: 'auth', mac: authMac(Buffer.from('not-the-shared-secret-at-all'), 'primary', 'g', h.nonce, sh.nonce) })
  })
  await expectRefused('right secret, other group in the MAC', 'AUTH_FAILED', async c => {
    const h = hello()
    c.sendMsg(h)
    const sh = await c.waitFor(m => m.t === 'hello')
    c.sendMsg({ t: 'auth', mac: authMac(E.secret, 'primary', 'other', h.nonce, sh.nonce) })
  })
  // The right MAC by the same raw client does authenticate: the above
  // failed for their MAC, not for the client.
  const c = await raw(PORT)
  try {
    const h = hello()
    c.sendMsg(h)
    const sh = await c.waitFor(m => m.t === 'hello')
    c.sendMsg({ t: 'auth', mac: authMac(E.secret, 'primary', 'g', h.nonce, sh.nonce) })
    const st = await c.waitFor(m => m.t === 'state' || m.t === 'error')
    assert.is(st.t, 'state', JSON.stringify(st))
  } finally {
    c.socket.destroy()
  }
  await waitFor(() => /primary raw-client .* disconnected|ended/.test(serve.err), 3000, 'serve to see the client go')
}))

test('a batch or an ack before any hello: BAD_MESSAGE', bounded(10_000, async () => {
  await expectRefused('batch first', 'BAD_MESSAGE', async c => c.sendMsg({ t: 'batch', b: Buffer.from([0xa0]) }))
  await expectRefused('auth first', 'BAD_MESSAGE', async c => c.sendMsg({ t: 'auth', mac: newNonce() }))
}))

test('a frame cut short and a silent client cost nothing: serve keeps serving', bounded(15_000, async () => {
  const c = await raw(PORT)
  const f = encodeFrame(encodeValue(hello()))
  c.send(f.subarray(0, f.length - 5))
  await sleep(200)
  c.socket.destroy()
  const quiet = await raw(PORT)
  await sleep(200)
  quiet.socket.destroy()
  await sleep(200)
  assert.is(serve.exited, null)
  // And a refused client right after still gets its answer.
  await expectRefused('after cut', 'GROUP_MISMATCH', async c2 => c2.sendMsg(hello({ group: 'h' })))
}))

test('after all that: the daemon is alive, a normal primary replicates, nothing outside the volumes changed', bounded(45_000, async () => {
  assert.is(serve.exited, null, serve.err)
  await assertStillServes(E, PORT)
  assert.is(E.outsideChanges(), null)
  assert.is(serve.exited, null, serve.err)
}))

test.run()
