// Test helpers for real mounts. The mount is always served by a child
// process (`node dist/cli.js mount ...`): a synchronous fs call from the
// process that serves a FUSE mount deadlocks, so tests never serve.
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = join(ROOT, 'dist', 'cli.js')
export const TMP = process.env.REPLFS_TEST_TMP ?? '/tmp/replfs-test'

export function tempDir (prefix) {
  mkdirSync(TMP, { recursive: true })
  return mkdtempSync(join(TMP, prefix + '-'))
}

/** Runs the CLI to completion (not for daemons). */
export function cli (args, opts = {}) {
  return new Promise(resolve => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    let out = ''
    let err = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => { err += d })
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    p.on('close', code => { clearTimeout(t); resolve({ code, out, err }) })
  })
}

/** Starts a daemon verb and waits for a stdout line containing `readyWord`. `wrap`: a
 *  command that execs the daemon (e.g. `nsenter --net=...`), so the pid is still the
 *  daemon's and signals reach it. */
export function daemon (args, { readyWord = 'ready', timeoutMs = 20_000, env, wrap = [] } = {}) {
  return new Promise((resolve, reject) => {
    const argv = [...wrap, process.execPath, CLI, ...args]
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    const d = { proc: p, out: '', err: '', exited: null }
    const exited = new Promise(res => p.on('exit', (code, signal) => { d.exited = { code, signal }; res(d.exited) }))
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`daemon not ${readyWord} within ${timeoutMs} ms: ${d.err}`)) }, timeoutMs)
    p.stdout.on('data', c => {
      d.out += c
      if (d.out.includes(readyWord)) { clearTimeout(t); resolve(d) }
    })
    p.stderr.on('data', c => { d.err += c })
    p.on('exit', () => { clearTimeout(t); if (!d.out.includes(readyWord)) reject(new Error(`daemon exited before ${readyWord}: ${d.err}`)) })
    d.stop = async (signal = 'SIGTERM', ms = 20_000) => {
      if (d.exited) return d.exited
      p.kill(signal)
      let t
      const timer = new Promise(res => { t = setTimeout(() => res(null), ms) })
      const r = await Promise.race([exited, timer])
      clearTimeout(t)
      if (r === null) { p.kill('SIGKILL'); return await exited }
      return r
    }
    d.kill9 = async () => { p.kill('SIGKILL'); return exited }
    d.waitExit = () => exited
  })
}

/** Starts a capturing mount; returns the daemon. */
export function mount (args, opts) {
  return daemon(['mount', ...args], opts)
}

/** Frees a mount whose server died or hangs (abort the connection, lazy umount). */
export function unstick (mnt) {
  try {
    const info = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    for (const line of info) {
      const f = line.split(' ')
      if (f[4] !== mnt) continue
      const minor = f[2].split(':')[1]
      const abort = `/sys/fs/fuse/connections/${minor}/abort`
      if (existsSync(abort)) execFileSync('sh', ['-c', `echo 1 > ${abort}`])
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
    }
  } catch {}
}

export function isMounted (mnt) {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] === mnt)
}

/** Shell command with a bound; returns stdout. Throws with stderr on failure. */
export function sh (cmd, timeoutMs = 60_000) {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A test body with a hard timeout. */
export function bounded (ms, fn) {
  return async (ctx) => {
    let t
    const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`test timed out after ${ms} ms`)), ms) })
    try { await Promise.race([fn(ctx), timeout]) } finally { clearTimeout(t) }
  }
}
