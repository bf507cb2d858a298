// The local control socket (STATE/control.sock): `replfs status` asks a
// running daemon for its state as JSON; other verbs (`replfs verify`) send
// a command and read its events. Unix socket, mode 0600: only the daemon's
// user can ask.
//
// Protocol: the client either half-closes at once (status: one JSON
// document back), or writes one JSON line {"cmd": NAME, ...args} and reads
// JSON lines until the daemon closes.
import net from 'node:net'
import fs from 'node:fs'
import { join } from 'node:path'
import { describe, replError } from '../core/errors.js'

/** A command of the control socket: `send` writes one event line; the
 *  command ends when the promise settles (an error is sent as {error}).
 *  `gone` resolves if the client goes away first. */
export type ControlCommand = (args: { [k: string]: unknown }, send: (event: unknown) => void, gone: Promise<void>) => Promise<void>

const requestBytesMax = 64 * 1024

export function controlPath (state: string): string {
  return join(state, 'control.sock')
}

export async function serveControl (state: string, status: () => unknown, commands: { [name: string]: ControlCommand } = {}): Promise<net.Server> {
  const path = controlPath(state)
  fs.rmSync(path, { force: true }) // left by a killed daemon: the state lock says we own it now
  const server = net.createServer({ allowHalfOpen: true }, sock => {
    sock.on('error', () => {})
    let req = ''
    let answered = false
    const answer = (): void => {
      if (answered) return
      answered = true
      const line = req.split('\n')[0].trim()
      if (line === '') { sock.end(JSON.stringify(status()) + '\n'); return }
      const send = (e: unknown): void => { if (!sock.destroyed) sock.write(JSON.stringify(e) + '\n') }
      let args: { [k: string]: unknown }
      try {
        args = JSON.parse(line)
        if (typeof args !== 'object' || args === null) throw new Error('not an object')
      } catch {
        sock.end(JSON.stringify({ error: 'USAGE: the control request is not a JSON object' }) + '\n')
        return
      }
      const cmd = commands[String(args.cmd)]
      if (!cmd) { sock.end(JSON.stringify({ error: `USAGE: this daemon has no command ${JSON.stringify(args.cmd)}` }) + '\n'); return }
      const gone = new Promise<void>(resolve => sock.once('close', () => resolve()))
      cmd(args, send, gone).catch(err => send({ error: describe(err) })).finally(() => sock.end())
    }
    sock.on('data', d => {
      req += d
      if (req.length > requestBytesMax) { answered = true; sock.destroy(); return }
      if (req.includes('\n')) answer()
    })
    sock.on('end', answer)
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(path, resolve) })
  fs.chmodSync(path, 0o600)
  server.unref()
  return server
}

/** Why the control socket cannot be reached, in the operator's terms: a
 *  user who may not open it is told so, not that no daemon runs. */
export function controlError (state: string, code: string | undefined): Error {
  const path = controlPath(state)
  if (code === 'EACCES' || code === 'EPERM') {
    const uid = process.getuid?.()
    return replError('USAGE', `permission denied on ${path}${uid !== undefined ? ` for uid ${uid}` : ''}: only the daemon's user can ask it (the socket is mode 0600, the state directory 0700)`,
      'run `replfs status` as that user (root, usually: sudo replfs status ...)')
  }
  if (code === 'ECONNREFUSED') return replError('USAGE', `no replfs daemon is running with state directory ${state} (a stale ${path} is left by one that stopped)`)
  if (code === 'ENOENT' || code === 'ENOTDIR') return replError('USAGE', `no replfs daemon is running with state directory ${state} (no ${path})`)
  return replError('USAGE', `cannot reach the daemon of ${state} through ${path} (${code ?? 'unknown error'})`)
}

export function queryControl (state: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(controlPath(state))
    sock.end() // no command: the daemon answers with its status
    let data = ''
    const timer = setTimeout(() => { sock.destroy(); reject(replError('TIMEOUT', `no answer from the daemon of ${state}`)) }, timeoutMs)
    sock.on('data', d => { data += d })
    sock.on('end', () => {
      clearTimeout(timer)
      try { resolve(JSON.parse(data)) } catch { reject(replError('PEER_ERROR', `bad answer from the daemon of ${state}`)) }
    })
    sock.on('error', err => {
      clearTimeout(timer)
      reject(controlError(state, (err as NodeJS.ErrnoException).code))
    })
  })
}

/** Sends a command and hands each event line to `onEvent`; resolves when
 *  the daemon closes. An {error} event rejects. */
export function commandControl (state: string, request: { cmd: string, [k: string]: unknown }, onEvent: (e: { [k: string]: unknown }) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(controlPath(state))
    sock.write(JSON.stringify(request) + '\n')
    let buf = ''
    let failed: Error | null = null
    sock.on('data', d => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (!line.trim()) continue
        let e: { [k: string]: unknown }
        try { e = JSON.parse(line) } catch { failed ??= replError('PEER_ERROR', `bad answer from the daemon of ${state}`); continue }
        if (typeof e.error === 'string') failed ??= new Error(e.error)
        else onEvent(e)
      }
    })
    sock.on('end', () => failed ? reject(failed) : resolve())
    sock.on('error', err => reject(controlError(state, (err as NodeJS.ErrnoException).code)))
  })
}
