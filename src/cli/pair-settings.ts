// What `pair init` and `pair join` record of a two-host pair, on each host
// (STATE/pair.json): this host's volumes, where its applications mount
// them when it is the primary, where it listens when it is the secondary,
// and the other host's address and state directory. From it the pair's
// role verbs (pair-roles.ts) compose the exact `mount` and `serve`
// commands, so an operator never recomposes flags at a failover.
import fs from 'node:fs'
import { join } from 'node:path'
import { replError } from '../core/errors.js'

export interface PairSettings {
  group: string
  mode: string
  journalMax: string
  onOverflow: string
  self: {
    listen: string // HOST:PORT this host serves on as the secondary
    mount: string | null // where applications use the volumes when this host is the primary
    roMount: string | null // the secondary's read-only mount, if any
    volumes: string[] // --volume/--image flags, as mount and serve take them
  }
  peer: {
    address: string | null // HOST:PORT the other host serves on as the secondary
    state: string | null // the other host's state directory
  }
}

export const pairFile = 'pair.json'

export function savePair (state: string, s: PairSettings): void {
  fs.writeFileSync(join(state, pairFile), JSON.stringify(s, null, 2) + '\n', { mode: 0o600 })
}

export function loadPair (state: string): PairSettings {
  let text: string
  try {
    text = fs.readFileSync(join(state, pairFile), 'utf8')
  } catch {
    throw replError('USAGE', `${state} holds no ${pairFile}: not set up by \`replfs pair init\` or \`replfs pair join\``,
      'use `replfs promote` / `replfs demote` and start `replfs mount` / `replfs serve` yourself (README, Failover and failback)')
  }
  const v = JSON.parse(text) as PairSettings
  if (typeof v.group !== 'string' || !v.self || !Array.isArray(v.self.volumes)) throw replError('STATE_DAMAGED', `${join(state, pairFile)} is not a pair's settings`)
  return v
}

const quote = (s: string) => /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
export const shell = (args: string[]) => args.map(quote).join(' ')

/** `replfs mount` for this host as the primary (argv after `replfs`). */
export function mountArgs (state: string, s: PairSettings): string[] {
  if (!s.self.mount) throw replError('USAGE', `${join(state, pairFile)} names no mountpoint for this host as the primary`, 'set self.mount there (`pair join --app-mount DIR` records it)')
  if (!s.peer.address) throw replError('USAGE', `${join(state, pairFile)} does not say where the other host listens`, 'set peer.address there (`pair join --peer HOST:PORT` records it)')
  return ['mount', s.self.mount, '--group', s.group, '--state', state, ...s.self.volumes, '--peer', s.peer.address, '--mode', s.mode,
    '--journal-max', s.journalMax, '--on-overflow', s.onOverflow, '--secret-file', join(state, 'secret')]
}

/** `replfs serve` for this host as the secondary (argv after `replfs`). */
export function serveArgs (state: string, s: PairSettings): string[] {
  return ['serve', '--listen', s.self.listen, '--group', s.group, '--state', state, ...s.self.volumes, '--secret-file', join(state, 'secret'),
    ...(s.self.roMount ? ['--mount', s.self.roMount] : [])]
}

/** The other host, by name, for "now on HOST" lines. */
export function peerHost (s: PairSettings): string {
  if (!s.peer.address) return 'the other host'
  const i = s.peer.address.lastIndexOf(':')
  return i > 0 ? s.peer.address.slice(0, i) : s.peer.address
}
