// timeout: 90
// Hostile batches from an authenticated client against a real `replfs
// serve`. The client is made of the product's own modules (connect,
// handshake as a primary); its batches are encodeBatch payloads sent as
// {t:'batch'}. Records that escape the volume root ('../x', '/etc/...',
// through a symlink the copy holds that points outside, a hard link to a
// file outside), an unknown volume, bad sizes and counts, a batch of another
// group or format version, out of sequence or off the chain: each ends that
// connection with an error message naming its code, the serve log names it,
// the daemon stays alive, nothing is written outside the volumes, and a
// normal primary replicates afterwards.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import {
  makeEnv, startServe, primaryClient, batch, bytes, zeroHash, waitFor, sleep, assertStillServes, imageSize, status
} from './env.mjs'
import { chainHash } from '../../dist/journal/codec.js'
import { batchRecordsMax, recordDataBytesMax, pathBytesMax } from '../../dist/core/limits.js'

const PORT = 17201
let E, serve

test.before(async () => {
  E = makeEnv('faults-batches')
  serve = await startServe(E, PORT)
})
test.after(async () => {
  await serve?.stop()
  E?.cleanupOutside()
})

/**
 * One attack on a fresh connection: history restarted at 1 (rebase), the
 * copy declared consistent (so apply errors are errors), then `payloads`.
 * Expects the connection to end with `code` named in the close reason and
 * the serve log.
 */
async function attack (what, code, payloads, { consistent = true } = {}) {
  await idle()
  const logFrom = serve.err.length
  const c = await primaryClient(E, PORT)
  try {
    c.conn.send({ t: 'rebase', seq: 1, prev: zeroHash, generation: 'attacker-gen', full: false })
    if (consistent) c.conn.send({ t: 'consistent', seq: 0 })
    for (const p of payloads) c.conn.send(p instanceof Uint8Array ? { t: 'batch', b: p } : p)
    const why = await Promise.race([c.closed, sleep(8000).then(() => 'still open')])
    assert.ok(why instanceof Error, `${what}: connection not ended by serve (${why}); messages ${JSON.stringify(c.messages.map(m => m.t))}`)
    assert.match(why.message, new RegExp(`peer reports ${code}\\b`), `${what}: close reason ${why.message}`)
    await waitFor(() => serve.err.slice(logFrom).includes(code), 3000, `${code} in the serve log`)
      .catch(() => assert.unreachable(`${what}: serve log does not name ${code}:\n${serve.err.slice(logFrom)}`))
  } finally {
    c.conn.destroy()
  }
  assert.is(serve.exited, null, `${what}: serve exited: ${serve.err}`)
  assert.is(E.outsideChanges(), null, what)
  return serve.err.slice(logFrom)
}

/** Serve has dropped the previous connection (one primary at a time). */
const idle = () => waitFor(async () => (await status(E.sstate)).peerState === 'waiting', 5000, 'serve to drop the previous connection', 20)

const D = 0 // the directory volume
const I = 1 // the image volume
const w = (path, o = {}) => ({ kind: 'write', vol: D, path, off: 0, data: bytes('pwned'), ...o })

test('a good batch from the same client is applied (the client is faithful)', bounded(10_000, async () => {
  const c = await primaryClient(E, PORT)
  try {
    c.conn.send({ t: 'rebase', seq: 1, prev: zeroHash, generation: 'attacker-gen', full: false })
    c.conn.send({ t: 'consistent', seq: 0 })
    c.conn.send({ t: 'batch', b: batch([{ kind: 'create', vol: D, path: 'ok', mode: 0o644 }, w('ok', { data: bytes('fine') })]) })
    const ack = await waitFor(() => c.messages.find(m => m.t === 'ack'), 5000, 'an ack')
    assert.is(ack.applied, 2)
    assert.is(fs.readFileSync(join(E.sdata, 'ok'), 'utf8'), 'fine')
  } finally {
    c.conn.close()
  }
  await sleep(100)
}))

test('path escapes: ../x, a/../../x, absolute paths, NUL', bounded(30_000, async () => {
  const out = join(E.base, 'x')
  for (const p of ['../x', 'ok/../../x', '../sentinel/secret', '../../x', E.etcName, join(E.sentinel, 'secret'), '/x']) {
    await attack(`write ${p}`, 'PATH_ESCAPE', [batch([w(p)])])
    await attack(`create ${p}`, 'PATH_ESCAPE', [batch([{ kind: 'create', vol: D, path: p, mode: 0o666 }])])
  }
  await attack('mkdir ../x', 'PATH_ESCAPE', [batch([{ kind: 'mkdir', vol: D, path: '../x', mode: 0o777 }])])
  await attack('symlink at ../x', 'PATH_ESCAPE', [batch([{ kind: 'symlink', vol: D, path: '../x', target: 'y' }])])
  await attack('rename ok to ../x', 'PATH_ESCAPE', [batch([{ kind: 'rename', vol: D, path: 'ok', to: '../x' }])])
  await attack('link ../sentinel/secret to inside', 'PATH_ESCAPE', [batch([{ kind: 'link', vol: D, path: '../sentinel/secret', to: 'stolen' }])])
  await attack('unlink ../sentinel/secret', 'PATH_ESCAPE', [batch([{ kind: 'unlink', vol: D, path: '../sentinel/secret' }])])
  await attack('chmod /etc', 'PATH_ESCAPE', [batch([{ kind: 'chmod', vol: D, path: '/etc', mode: 0o777 }])])
  await attack('state record outside', 'PATH_ESCAPE', [batch([{ kind: 'state', vol: D, path: '../x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 9, target: '', whole: true }])])
  await attack('NUL in a path', 'BAD_BATCH', [batch([w('ok\0../../x')])])
  assert.not.ok(fs.existsSync(out))
  assert.not.ok(fs.existsSync(join(E.sdata, 'stolen')))
  assert.is(fs.readFileSync(join(E.sdata, 'ok'), 'utf8'), 'fine', 'rename/unlink did not happen')
}))

test('a symlink in the copy that points outside, then writes through it', bounded(30_000, async () => {
  // The symlink records are legitimate (a link's target is data) ...
  await idle()
  const c = await primaryClient(E, PORT)
  try {
    c.conn.send({ t: 'rebase', seq: 1, prev: zeroHash, generation: 'attacker-gen', full: false })
    c.conn.send({ t: 'consistent', seq: 0 })
    c.conn.send({ t: 'batch', b: batch([
      { kind: 'symlink', vol: D, path: 'abs', target: E.sentinel },
      { kind: 'symlink', vol: D, path: 'rel', target: '../sentinel' },
      { kind: 'symlink', vol: D, path: 'file', target: join(E.sentinel, 'secret') },
      { kind: 'symlink', vol: D, path: 'etc', target: '/etc' }
    ]) })
    await waitFor(() => c.messages.find(m => m.t === 'ack'), 5000, 'the symlinks applied')
  } finally {
    c.conn.close()
  }
  assert.is(fs.readlinkSync(join(E.sdata, 'abs')), E.sentinel)
  // ... but nothing may go through them.
  const name = E.etcName.slice('/etc/'.length)
  for (const p of ['abs/secret', 'abs/new', 'rel/secret', 'rel/sub/deep', `etc/${name}`, 'abs/sub/new']) {
    await attack(`write ${p}`, 'PATH_ESCAPE', [batch([w(p)])])
    await attack(`truncate ${p}`, 'PATH_ESCAPE', [batch([{ kind: 'truncate', vol: D, path: p, size: 0 }])])
    await attack(`create ${p}`, 'PATH_ESCAPE', [batch([{ kind: 'create', vol: D, path: p, mode: 0o666 }])])
    await attack(`setxattr ${p}`, 'PATH_ESCAPE', [batch([{ kind: 'setxattr', vol: D, path: p, name: 'user.x', value: bytes('1'), flags: 0 }])])
  }
  await attack('write through a final symlink to a file outside', 'PATH_ESCAPE', [batch([w('file')])])
  await attack('truncate through a final symlink', 'PATH_ESCAPE', [batch([{ kind: 'truncate', vol: D, path: 'file', size: 0 }])])
  await attack('chmod through a final symlink', 'PATH_ESCAPE', [batch([{ kind: 'chmod', vol: D, path: 'abs', mode: 0o777 }])])
  await attack('hard link to a file outside', 'PATH_ESCAPE', [batch([{ kind: 'link', vol: D, path: 'abs/secret', to: 'stolen' }])])
  await attack('rename a file outside in', 'PATH_ESCAPE', [batch([{ kind: 'rename', vol: D, path: 'rel/secret', to: 'stolen' }])])
  await attack('rename into the outside', 'PATH_ESCAPE', [batch([{ kind: 'rename', vol: D, path: 'ok', to: 'abs/moved' }])])
  // Symlink and write through it in one batch.
  await attack('symlink then write in one batch', 'PATH_ESCAPE', [batch([
    { kind: 'symlink', vol: D, path: 'fresh', target: E.sentinel }, w('fresh/secret')
  ])])
  // Across batches of one connection.
  const first = batch([{ kind: 'symlink', vol: D, path: 'fresh2', target: '../sentinel' }])
  await attack('symlink then write in the next batch', 'PATH_ESCAPE', [first, batch([w('fresh2/new')], { seq: 2, prev: chainHash(first) })])
  assert.not.ok(fs.existsSync(join(E.sdata, 'stolen')))
  assert.is(fs.readFileSync(join(E.sentinel, 'secret'), 'utf8'), 'do not touch')
}))

test('unknown volumes: UNKNOWN_VOLUME; out of the format\'s range: BAD_BATCH', bounded(15_000, async () => {
  await attack('vol 2', 'UNKNOWN_VOLUME', [batch([w('a', { vol: 2 })])])
  await attack('vol 63', 'UNKNOWN_VOLUME', [batch([{ kind: 'mkdir', vol: 63, path: 'a', mode: 0o755 }])])
  await attack('vol 64', 'BAD_BATCH', [batch([w('a', { vol: 64 })])])
  await attack('vol -1', 'BAD_BATCH', [batch([w('a', { vol: -1 })])])
  await attack('vol "data"', 'BAD_BATCH', [batch([w('a', { vol: 'data' })])])
}))

test('bad sizes and counts', bounded(30_000, async () => {
  await attack('write data over the record limit', 'BAD_BATCH', [batch([w('big', { data: new Uint8Array(recordDataBytesMax + 1) })])])
  await attack('path over PATH_MAX', 'BAD_BATCH', [batch([w('p'.repeat(pathBytesMax + 1))])])
  await attack('too many records', 'BAD_BATCH', [batch(Array.from({ length: batchRecordsMax + 1 }, (_, i) => ({ kind: 'fsync', vol: D, path: `f${i}` })))])
  await attack('no records', 'BAD_BATCH', [batch([])])
  await attack('negative offset', 'BAD_BATCH', [batch([w('f', { off: -1 })])])
  await attack('fractional size', 'BAD_BATCH', [batch([{ kind: 'truncate', vol: D, path: 'ok', size: 1.5 }])])
  await attack('mode over 32 bits', 'BAD_BATCH', [batch([{ kind: 'chmod', vol: D, path: 'ok', mode: 2 ** 33 }])])
  await attack('image write past its end', 'IMAGE_BOUNDS', [batch([{ kind: 'write', vol: I, path: '', off: imageSize - 10, data: new Uint8Array(100) }])])
  await attack('image write far past its end', 'IMAGE_BOUNDS', [batch([{ kind: 'write', vol: I, path: '', off: 2 ** 50, data: new Uint8Array(1) }])])
  // Offsets and sizes the file system cannot take: refused by it, not applied.
  await attack('write at offset 2^52', 'APPLY_FAILED', [batch([w('ok', { off: 2 ** 52 })])])
  await attack('truncate to 2^53-1', 'APPLY_FAILED', [batch([{ kind: 'truncate', vol: D, path: 'ok', size: 2 ** 53 - 1 }])])
  await attack('truncate to 2^60 (not a safe integer)', 'BAD_BATCH', [batch([{ kind: 'truncate', vol: D, path: 'ok', size: 2 ** 60 }])])
  await attack('name over NAME_MAX', 'PATH_ESCAPE', [batch([{ kind: 'create', vol: D, path: 'n'.repeat(256), mode: 0o644 }])])
  assert.ok(fs.statSync(join(E.sdata, 'ok')).size < 1 << 20, 'no huge file made')
  assert.is(fs.statSync(E.sdisk).size, imageSize, 'the image keeps its size')
}))

test('batches of another group, another format, off sequence or chain, undecodable', bounded(20_000, async () => {
  await attack('other group', 'GROUP_MISMATCH', [batch([w('g')], { group: 'other' })])
  const { encodeBatch } = await import('../../dist/journal/codec.js')
  await attack('format version 1 (an older replfs)', 'VERSION_MISMATCH', [encodeBatch({ v: 1, group: 'g', seq: 1, prev: zeroHash, ts: 1, sync: false, records: [w('v')] })])
  await attack('gap in sequence', 'JOURNAL_GAP', [batch([w('gap')], { seq: 5 })])
  await attack('prev hash off the chain', 'JOURNAL_CHAIN', [batch([w('chain')], { prev: new Uint8Array(16).fill(9) })])
  await attack('prev hash of the wrong size', 'BAD_BATCH', [batch([w('chain')], { prev: new Uint8Array(8) })])
  await attack('payload not CBOR', 'FRAME_DECODE', [new Uint8Array([0xff, 0x00, 0x01])])
  await attack('payload a list', 'BAD_BATCH', [(await import('../../dist/journal/codec.js')).encodeValue([1, 2, 3])])
  await attack('unknown record kind', 'BAD_BATCH', [batch([{ kind: 'format', vol: D, path: '' }])])
  await attack('a message a secondary does not take', 'BAD_MESSAGE', [{ t: 'ack', applied: 1 }])
  await attack('a manifest sent to the secondary', 'BAD_MESSAGE', [{ t: 'manifest', vol: 0, entries: [] }])
  for (const n of ['g', 'v', 'gap', 'chain']) assert.not.ok(fs.existsSync(join(E.sdata, n)), `${n} was applied`)
}))

test('a second primary while one is connected is refused', bounded(10_000, async () => {
  await idle()
  const first = await primaryClient(E, PORT, { node: 'first' })
  try {
    const err = await primaryClient(E, PORT, { node: 'second' }).then(() => null, e => e)
    assert.ok(err, 'second primary accepted')
    assert.match(err.message, /already serves a primary/)
  } finally {
    first.conn.close()
  }
  await sleep(200)
}))

test('after all that: daemon alive, status sane, a normal primary replicates, nothing outside changed', bounded(45_000, async () => {
  assert.is(serve.exited, null, serve.err)
  await idle()
  const s = await status(E.sstate)
  assert.is(s.role, 'secondary')
  assert.ok(s.lastError, 'the last refusal is in status')
  await assertStillServes(E, PORT)
  assert.is(E.outsideChanges(), null)
  assert.is(serve.exited, null, serve.err)
}))

test.run()
