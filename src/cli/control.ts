// The local control socket (STATE/control.sock): `replfs status` asks a
// running daemon for its state as JSON. Unix socket, mode 0600: only the
// daemon's user can ask.
import net from 'node:net'
import fs from 'node:fs'
import { join } from 'node:path'
import { replError } from '../core/errors.js'

export function controlPath (state: string): string {
  return join(state, 'control.sock')
}

export async function serveControl (state: string, status: () => unknown): Promise<net.Server> {
  const path = controlPath(state)
  fs.rmSync(path, { force: true }) // left by a killed daemon: the state lock says we own it now
  const server = net.createServer(sock => {
    sock.on('error', () => {})
    sock.end(JSON.stringify(status()) + '\n')
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
