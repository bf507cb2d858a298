// Shared by the fault tests: a real `replfs serve` (child process) over a
// directory volume and an image volume in a temp dir, with a sentinel
// directory next to them that nothing may touch; a raw TCP client that
// speaks bytes; a protocol client made of the product's own modules.
import fs from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { daemon, mount, unstick, tempDir } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { waitFor } from '../helpers/pair.mjs'
import { FrameDecoder, encodeFrame } from '../../dist/journal/frame.js'
import { encodeValue, encodeBatch, zeroHash } from '../../dist/journal/codec.js'
import { decodeMessage, protocolVersion } from '../../dist/replicate/messages.js'
import { connect } from '../../dist/replicate/transport.js'
import { handshake } from '../../dist/replicate/handshake.js'
import { newNonce } from '../../dist/replicate/auth.js'
import { queryControl } from '../../dist/cli/control.js'
import { formatVersion } from '../../dist/core/limits.js'

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
export const imageSize = 1 << 20
export const GROUP = 'g'
export { protocolVersion, newNonce, encodeBatch, zeroHash, encodeFrame, encodeValue, waitFor }


export function writeSecret (path, text = randomBytes(24).toString('hex')) {
  fs.writeFileSync(path, text + '\n', { mode: 0o600 })
  fs.chmodSync(path, 0o600)
  return Buffer.from(text)
}

/**
 * base/
 *   sstate/  s-data/ (dir volume)  s-disk.img (image volume)
 *   p-data/  p-disk.img  pstate/  mnt/   (a normal primary, for the "still serves" check)
 *   sentinel/ (must stay exactly as made)
 *   secret (0600)
 */
export function makeEnv (prefix) {
  const base = tempDir(prefix)
  const E = {
    base,
    sstate: join(base, 'sstate'), sdata: join(base, 's-data'), sdisk: join(base, 's-disk.img'),
    pstate: join(base, 'pstate'), pdata: join(base, 'p-data'), pdisk: join(base, 'p-disk.img'), mnt: join(base, 'mnt'),
    sentinel: join(base, 'sentinel'), secretFile: join(base, 'secret'),
    etcName: `/etc/replfs-t-${randomBytes(4).toString('hex')}`
  }
  for (const d of [E.sdata, E.pdata, E.mnt, E.sentinel, join(E.sentinel, 'sub')]) fs.mkdirSync(d, { recursive: true })
  fs.writeFileSync(join(E.sentinel, 'secret'), 'do not touch')
  fs.writeFileSync(join(E.sentinel, 'sub', 'deep'), 'nor this')
  fs.writeFileSync(join(E.pdata, 'before'), 'primary data from before the pair')
  E.secret = writeSecret(E.secretFile)
  E.volumes = [{ name: 'data', kind: 'dir', size: 0 }, { name: 'disk', kind: 'image', size: imageSize }]
  E.sentinelBefore = snapshot(E.sentinel)
  E.topBefore = null // taken once serve has made its files
  /** Nothing written outside the volumes: sentinel identical, no new entry
   *  in the temp dir or /etc; returns a description of what differs. */
  E.outsideChanges = () => {
    const out = []
    const now = snapshot(E.sentinel)
    if (JSON.stringify(now) !== JSON.stringify(E.sentinelBefore)) out.push(`sentinel changed: ${JSON.stringify(now)}`)
    if (E.topBefore) {
      const top = fs.readdirSync(base).sort()
      const added = top.filter(n => !E.topBefore.includes(n) && !['pstate', 'p-disk.img'].includes(n)) // the normal primary's
      if (added.length) out.push(`new entries next to the volumes: ${added.join(', ')}`)
    }
    for (const p of [E.etcName, '/etc/x', '/x', join(base, 'x'), join(E.sstate, '..', 'x')]) if (fs.existsSync(p)) out.push(`${p} exists`)
    return out.length ? out.join('\n') : null
  }
  E.cleanupOutside = () => { try { fs.rmSync(E.etcName, { force: true, recursive: true }) } catch {} }
  return E
}

export function serveArgs (E, port, extra = []) {
  return ['serve', '--listen', `127.0.0.1:${port}`, '--state', E.sstate, '--group', GROUP,
    '--volume', `data=${E.sdata}`, '--image', `disk=${E.sdisk}:${imageSize}`, '--secret-file', E.secretFile, ...extra]
}

export async function startServe (E, port, extra = []) {
  const d = await daemon(serveArgs(E, port, extra), { readyWord: 'listening' })
  if (!E.topBefore) E.topBefore = fs.readdirSync(E.base).sort()
  return d
}

export function startPrimary (E, port, { secretFile = E.secretFile, extra = [] } = {}) {
  return mount([E.mnt, '--group', GROUP, '--state', E.pstate, '--volume', `data=${E.pdata}`, '--image', `disk=${E.pdisk}:${imageSize}`,
    '--peer', `127.0.0.1:${port}`, '--secret-file', secretFile, ...extra])
}

export const status = (state) => queryControl(state, 5000)

/** A normal primary connects, replicates a file and an image block, and the
 *  copy shows them: the daemon still serves after whatever came before. */
export async function assertStillServes (E, port) {
  const pri = await startPrimary(E, port)
  try {
    const name = `after-${Date.now()}`
    fs.writeFileSync(join(E.mnt, 'data', name), 'replicated after the attack')
    const fd = fs.openSync(join(E.mnt, 'disk'), 'r+')
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 8192)
    fs.closeSync(fd)
    await waitFor(async () => {
      const p = await status(E.pstate)
      return p.peerState === 'streaming' && p.lagRecords === 0 && !p.resync && fs.existsSync(join(E.sdata, name)) && p
    }, 30_000, 'the primary to replicate after the hostile input')
    if (fs.readFileSync(join(E.sdata, name), 'utf8') !== 'replicated after the attack') throw new Error('replica content differs')
    if (!fs.readFileSync(join(E.sdata, 'before'), 'utf8').startsWith('primary data')) throw new Error('initial sync missing')
    const img = Buffer.alloc(4096); const fd2 = fs.openSync(E.sdisk, 'r'); fs.readSync(fd2, img, 0, 4096, 8192); fs.closeSync(fd2)
    if (!img.equals(Buffer.alloc(4096, 0x5a))) throw new Error('image block not replicated')
    return pri
  } finally {
    await pri.stop()
    unstick(E.mnt)
  }
}

// ---- a raw client: bytes in, frames out --------------------------------------

/** Connects to 127.0.0.1:port. `frames()` decodes what came back so far. */
export function raw (port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port })
    const c = { socket: s, data: Buffer.alloc(0), closed: null }
    c.closedP = new Promise(res => s.on('close', () => { c.closed = true; res() }))
    s.on('data', d => { c.data = Buffer.concat([c.data, d]) })
    s.on('error', () => {}) // a reset after the peer's error is expected
    c.send = (bytes) => s.write(bytes)
    c.sendMsg = (m) => s.write(encodeFrame(encodeValue(m)))
    c.frames = () => {
      const out = []
      const d = new FrameDecoder()
      try { for (const p of d.push(c.data)) out.push(decodeMessage(p)) } catch (err) { out.push({ t: 'undecodable', err: err.message }) }
      return out
    }
    c.waitFor = (pred, ms = 5000) => waitFor(() => c.frames().find(pred), ms, 'a message from serve')
    /** Waits for the close (bounded); true if the server closed it. */
    c.waitClosed = async (ms = 5000) => { await Promise.race([c.closedP, sleep(ms)]); if (!c.closed) s.destroy(); return c.closed === true }
    s.once('connect', () => resolve(c))
    s.once('error', reject)
  })
}

export function hello (o = {}) {
  return { t: 'hello', proto: protocolVersion, group: GROUP, node: 'raw-client', role: 'primary', volumes: [{ name: 'data', kind: 'dir', size: 0 }, { name: 'disk', kind: 'image', size: imageSize }], nonce: newNonce(), auth: true, ...o }
}

// ---- a protocol client from the product's modules ---------------------------

/** Connects and authenticates as a primary; resolves once the secondary
 *  sent its state. `messages` holds what came after; `closed` resolves to
 *  the close reason (PEER_ERROR "peer reports CODE: ..." when the secondary
 *  sent an error). */
export async function primaryClient (E, port, { node = 'attacker' } = {}) {
  const conn = await connect('127.0.0.1', port, null, 5000)
  const c = { conn, messages: [], reason: undefined }
  c.closed = new Promise(resolve => conn.on('close', err => { c.reason = err; resolve(err) }))
  const stateP = new Promise(resolve => conn.on('message', m => { c.messages.push(m); if (m.t === 'state') resolve(m) }))
  try {
    c.peer = await handshake(conn, { role: 'primary', group: GROUP, node, volumes: E.volumes, secret: E.secret }, 5000)
    conn.resume() // the handshake leaves the connection paused (messages held) until the caller listens
    c.state = await Promise.race([stateP, c.closed.then(err => { throw err ?? new Error('closed before state') }), sleep(5000).then(() => { throw new Error('no state message') })])
  } catch (err) {
    conn.destroy()
    throw err
  }
  return c
}

export function batch (records, { seq = 1, prev = zeroHash, group = GROUP, sync = false } = {}) {
  return encodeBatch({ v: formatVersion, group, seq, prev, ts: Date.now(), sync, records })
}

export const bytes = (s) => new Uint8Array(Buffer.from(s))
