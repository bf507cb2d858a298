// Flags both ends of a pair share: the secret, TLS files, the node id.
import fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { replError } from '../core/errors.js'
import type { TlsFiles } from '../replicate/transport.js'

export interface PeerFlags {
  secretFile?: string
  tlsCert?: string
  tlsKey?: string
  tlsCa?: string
}

/** The shared secret from a file (never from the command line): at least
 *  16 bytes after trimming; "-" reads standard input. */
export function readSecret (file: string | undefined): Buffer | null {
  if (!file) return null
  let text: string
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8').trim()
  } catch (err) {
    throw replError('USAGE', `cannot read the secret file ${file}: ${(err as NodeJS.ErrnoException).code}`)
  }
  if (Buffer.byteLength(text) < 16) throw replError('USAGE', `the secret in ${file} is shorter than 16 bytes`)
  if (file !== '-') {
    const mode = fs.statSync(file).mode & 0o077
    if (mode) throw replError('USAGE', `the secret file ${file} is readable by others (mode ${(fs.statSync(file).mode & 0o777).toString(8)})`, 'chmod 600 it')
  }
  return Buffer.from(text)
}

/** Where a daemon's shared secret comes from, decided before anything is
 *  written: --secret-file, else STATE/secret; `create` when that file does
 *  not exist yet (made by `ensureSecret` once every check passed). */
export interface SecretPlan { path: string, secret: Buffer | null, create: boolean }

export const stateSecretName = 'secret'

/** A secret is required on every address, loopback included (a local user
 *  is not a trusted peer). On loopback one is made in the state directory
 *  when none is given; off loopback it must exist already (given, or put
 *  there by `pair init`/`pair join`): a fresh one there could only be
 *  refused by the other side. */
export function planSecret (state: string, file: string | undefined, host: string, what: string): SecretPlan {
  if (file) return { path: file, secret: readSecret(file), create: false }
  const path = join(state, stateSecretName)
  if (fs.existsSync(path)) return { path, secret: readSecret(path), create: false }
  if (!isLoopback(host)) {
    throw replError('USAGE', `refusing to ${what} ${host} without a shared secret (--secret-file, or ${path})`,
      'run `replfs pair init` on the primary host (it prints the `pair join` for the secondary), or give both sides the same --secret-file')
  }
  return { path, secret: null, create: true }
}

/** The secret of a plan, creating the state directory's one (0600) if
 *  planned, and saying so: the other side needs the same file. */
export function ensureSecret (plan: SecretPlan, log: (l: string) => void, otherSide: string): Buffer {
  if (plan.secret) return plan.secret
  fs.writeFileSync(plan.path, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
  fs.chmodSync(plan.path, 0o600)
  log(`created a shared secret in ${plan.path} (mode 0600): ${otherSide} needs the same one; copy it there (0600) and give it with --secret-file, or pair with \`replfs pair init\``)
  return readSecret(plan.path)!
}

export function tlsFiles (f: PeerFlags): TlsFiles | null {
  const given = [f.tlsCert, f.tlsKey, f.tlsCa].filter(Boolean).length
  if (given === 0) return null
  if (given !== 3) throw replError('USAGE', 'TLS needs all of --tls-cert, --tls-key and --tls-ca')
  for (const p of [f.tlsCert!, f.tlsKey!, f.tlsCa!]) if (!fs.existsSync(p)) throw replError('USAGE', `TLS file ${p} does not exist`)
  return { cert: f.tlsCert!, key: f.tlsKey!, ca: f.tlsCa! }
}

/** This host's node id, made once per state directory. */
export function nodeId (state: string): string {
  const path = join(state, 'node-id')
  try {
    return fs.readFileSync(path, 'utf8').trim()
  } catch {
    const id = randomBytes(6).toString('hex')
    fs.writeFileSync(path, id + '\n', { mode: 0o644 })
    return id
  }
}

export function addPeerOptions (cmd: import('commander').Command): import('commander').Command {
  return cmd
    .option('--secret-file <file>', 'shared secret for HMAC authentication of the peer (mode 0600; "-" reads stdin)')
    .option('--tls-cert <file>', 'TLS certificate of this side (with --tls-key and --tls-ca)')
    .option('--tls-key <file>', 'TLS private key of this side')
    .option('--tls-ca <file>', 'CA that signed the peer\'s certificate')
}

export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}
