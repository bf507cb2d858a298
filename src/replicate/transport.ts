// The seam between the protocol and the network: a connection that carries
// framed, validated messages over a TCP or TLS socket. Contracts:
// - `send` queues a message; it returns false when the socket's buffer is
//   over its high-water mark (wait for 'drain' before sending more bulk).
// - A frame that fails its CRC, exceeds the size bound or is not a valid
//   message ends the connection with an error message to the peer first.
// - 'close' fires once, with the reason (an Error) or null for a clean end.
// - Until `authenticated()` (handshake.ts calls it), frames are bounded by
//   preAuthFrameBytesMax; a listener also bounds how long a connection may
//   stay unauthenticated and how many may at once (limits.ts).
import { EventEmitter } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { FrameDecoder, encodeFrame, frameHeader, frameHeaderOf } from '../journal/frame.js'
import { batchMessageHead, batchMessagePrefix, decodeMessage, encodeMessage, type Message } from './messages.js'
import { ReadBuffers } from '../journal/read-buffers.js'
import { describe, ReplError, replError } from '../core/errors.js'
import { frameBytesMax, preAuthConnectionsMax, preAuthDeadlineMs, preAuthFrameBytesMax } from '../core/limits.js'

export interface TlsFiles { cert: string, key: string, ca: string }

export interface Connection {
  on (ev: 'message', fn: (m: Message) => void): this
  on (ev: 'close', fn: (err: Error | null) => void): this
  on (ev: 'drain', fn: () => void): this
  on (ev: 'authenticated', fn: () => void): this
}

export class Connection extends EventEmitter {
  /** What batches that came in several socket reads are joined into, used
   *  again once the receiver is done with them (releaseBatch): a new buffer
   *  per frame was fresh memory to fault in and garbage for the collector,
   *  a MiB at a time on a secondary taking large writes
   *  (native-notes/performance.md 26). */
  private readonly joined = new ReadBuffers(4)
  private readonly decoder = new FrameDecoder(preAuthFrameBytesMax, { buffers: this.joined, prefix: batchMessageHead })
  private trusted = false
  private closed = false
  private held: Message[] | null = null
  private gathering = false
  readonly remote: string

  constructor (private readonly socket: net.Socket) {
    super()
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`
    socket.setNoDelay(true)
    socket.on('data', chunk => this.onData(chunk))
    socket.on('drain', () => this.emit('drain'))
    socket.on('error', err => this.finish(err))
    socket.on('close', () => this.finish(null))
  }

  send (m: Message): boolean {
    if (this.closed) return false
    const payload = encodeMessage(m)
    this.socket.cork()
    this.socket.write(frameHeader(payload))
    const ok = this.socket.write(payload)
    this.socket.uncork()
    return ok
  }

  /** Sends {t:'batch', b: payload} without copying the payload: it must not
   *  change until `written` is called (the socket has it, or failed). */
  sendBatch (payload: Buffer, written?: () => void): boolean {
    if (this.closed) { written?.(); return false }
    const prefix = batchMessagePrefix(payload.length)
    this.socket.cork()
    this.socket.write(frameHeaderOf([prefix, payload]))
    this.socket.write(prefix)
    const ok = this.socket.write(payload, written)
    this.socket.uncork()
    return ok
  }

  /** What is sent from now until `flush` goes out together, in one system
   *  call where it fits (the sender's batches of one burst: one `writev`
   *  per batch was a fifth of the primary's CPU under small writes,
   *  native-notes/performance.md 19). */
  gather (): void {
    if (this.gathering || this.closed) return
    this.gathering = true
    this.socket.cork()
  }

  /** Sends what `gather` held. */
  flush (): void {
    if (!this.gathering) return
    this.gathering = false
    this.socket.uncork()
  }

  /** Gives back the payload (`b`) of a batch message received here once
   *  nothing uses it any more: the buffer it was joined into (if it was) is
   *  read into again. Not given back, it stays this connection's and goes to
   *  the collector with it. */
  releaseBatch (b: Uint8Array): void {
    this.joined.release(b)
  }

  /** The peer proved it knows the secret: full-size frames from now on. */
  authenticated (): void {
    if (this.trusted) return
    this.trusted = true
    this.decoder.setMax(frameBytesMax)
    this.emit('authenticated')
  }

  get isAuthenticated (): boolean { return this.trusted }

  /** Holds incoming messages until `resume`. A protocol step that resolves
   *  a promise (handshake done, state received) pauses first: the next
   *  messages may be in the same chunk, and the code awaiting the promise
   *  attaches its listener a microtask later. */
  pause (): void {
    this.held ??= []
  }

  resume (): void {
    const held = this.held
    this.held = null
    for (const m of held ?? []) {
      if (this.closed) return
      const again = this.held as Message[] | null // a listener may pause again
      if (again) { again.push(m); continue }
      this.emit('message', m)
    }
  }

  /** Ends the connection, telling the peer why first. */
  fail (err: unknown): void {
    if (this.closed) return
    const code = err instanceof ReplError ? err.code : 'PEER_ERROR'
    const message = err instanceof Error ? err.message : String(err)
    this.socket.end(encodeFrame(encodeMessage({ t: 'error', code, message: message.slice(0, 4000) })))
    this.socket.pause() // read nothing more from a peer we are done with
    this.finish(err instanceof Error ? err : new Error(message))
    setTimeout(() => this.socket.destroy(), 1000).unref()
  }

  close (): void {
    if (this.closed) return
    this.socket.end()
    this.finish(null)
  }

  destroy (err?: Error): void {
    this.socket.destroy()
    this.finish(err ?? null)
  }

  private onData (chunk: Buffer): void {
    if (this.closed) return
    let payloads: Buffer[]
    try {
      payloads = this.decoder.push(chunk)
    } catch (err) {
      return this.fail(err)
    }
    for (const p of payloads) {
      let m: Message
      try {
        m = decodeMessage(p)
      } catch (err) {
        return this.fail(err)
      }
      if (m.t === 'error') {
        this.socket.destroy()
        return this.finish(replError('PEER_ERROR', `peer reports ${m.code}: ${m.message}`))
      }
      if (this.held) this.held.push(m)
      else this.emit('message', m)
      if (this.closed) return
    }
  }

  private finish (err: Error | null): void {
    if (this.closed) return
    this.closed = true
    this.emit('close', err)
  }
}

function tlsOptions (f: TlsFiles): tls.SecureContextOptions {
  return { cert: readFileSync(f.cert), key: readFileSync(f.key), ca: readFileSync(f.ca) }
}

/** Connects to host:port (TLS with mutual certificates when `tlsFiles`). */
export function connect (host: string, port: number, tlsFiles: TlsFiles | null, timeoutMs: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = tlsFiles
      ? tls.connect({ host, port, ...tlsOptions(tlsFiles), checkServerIdentity: () => undefined })
      : net.connect({ host, port })
    const timer = setTimeout(() => { socket.destroy(); reject(replError('TIMEOUT', `connect to ${host}:${port} timed out`)) }, timeoutMs)
    socket.once(tlsFiles ? 'secureConnect' : 'connect', () => { clearTimeout(timer); socket.removeAllListeners('error'); resolve(new Connection(socket)) })
    socket.once('error', err => { clearTimeout(timer); reject(err) })
  })
}

/** Listens on host:port; each accepted (and, with TLS, verified) socket
 *  becomes a Connection.
 *
 *  With TLS the client certificate is checked here rather than by node:tls
 *  (rejectUnauthorized would destroy the socket without a word: the peer
 *  sees a bare close and this log "socket hang up"). A peer whose
 *  certificate does not verify against --tls-ca gets an AUTH_FAILED error
 *  message naming the reason, and never reaches `onConnection`. */
export function listen (host: string, port: number, tlsFiles: TlsFiles | null, onConnection: (c: Connection) => void, log: (l: string) => void): Promise<net.Server> {
  const gate = new PreAuthGate(log)
  const accept = (s: net.Socket): void => {
    const c = new Connection(s)
    const key = socketKey(s)
    const slot = gate.slot(key)
    // Strangers get a deadline; the slot frees once authenticated or closed.
    const timer = setTimeout(() => c.fail(replError('TIMEOUT', `not authenticated within ${preAuthDeadlineMs} ms`)), preAuthDeadlineMs)
    timer.unref()
    c.once('authenticated', () => { clearTimeout(timer); gate.release(key, slot) })
    c.once('close', () => clearTimeout(timer))
    onConnection(c)
  }
  const onTls = (s: tls.TLSSocket): void => {
    if (!s.authorized) {
      const why = replError('AUTH_FAILED', `the peer's TLS certificate is refused: ${String(s.authorizationError ?? 'none presented')}`,
        'its certificate must be signed by the CA given to --tls-ca on this side')
      log(`TLS handshake failed: ${s.remoteAddress}:${s.remotePort}: ${describe(why)}`)
      new Connection(s).fail(why)
      return
    }
    accept(s)
  }
  const server: net.Server = tlsFiles
    ? tls.createServer({ ...tlsOptions(tlsFiles), requestCert: true, rejectUnauthorized: false, handshakeTimeout: preAuthDeadlineMs }, onTls)
    : net.createServer()
  // Raw TCP, before TLS: count it, or turn it away when the slots are full.
  server.on('connection', (raw: net.Socket) => {
    if (!gate.admit(raw)) return
    if (!tlsFiles) accept(raw)
  })
  server.on('tlsClientError', (err: Error) => log(`TLS handshake failed: ${describe(err)}`))
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.removeListener('error', reject); resolve(server) })
  })
}

const socketKey = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}`

/** The slots of connections not authenticated yet (preAuthConnectionsMax).
 *  Keyed by remote address and port, which the raw socket and its TLS
 *  wrapper share. */
class PreAuthGate {
  private readonly pending = new Map<string, object>()
  private lastLogMs = 0
  constructor (private readonly log: (l: string) => void) {}

  admit (raw: net.Socket): boolean {
    const key = socketKey(raw)
    if (this.pending.size >= preAuthConnectionsMax) {
      const why = replError('BUSY', `${preAuthConnectionsMax} connections are already waiting to authenticate; try again later`)
      raw.on('error', () => {})
      raw.pause()
      raw.end(encodeFrame(encodeMessage({ t: 'error', code: why.code, message: why.message })))
      setTimeout(() => raw.destroy(), 1000).unref()
      // A flood must not flood the log too.
      if (Date.now() - this.lastLogMs > 10_000) {
        this.lastLogMs = Date.now()
        this.log(`refusing connection from ${raw.remoteAddress}:${raw.remotePort}: ${describe(why)}`)
      }
      return false
    }
    const slot = {}
    this.pending.set(key, slot)
    raw.once('close', () => this.release(key, slot))
    return true
  }

  slot (key: string): object | undefined { return this.pending.get(key) }

  release (key: string, slot: object | undefined): void {
    if (slot && this.pending.get(key) === slot) this.pending.delete(key)
  }
}

/** "host:port" → parts; IPv6 as [addr]:port. */
export function parseHostPort (s: string): { host: string, port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s)
  const port = m ? Number(m[3]) : NaN
  if (!m || port < 1 || port > 65535) throw replError('USAGE', `bad address "${s}": want HOST:PORT`)
  return { host: m[1] ?? m[2], port }
}
