// `replfs pair`: the set-up of a pair across two hosts, one command per host.
//   host A (primary):   replfs pair init ...   creates the shared secret
//                        (0600) and prints the other host's command and
//                        this host's mount command;
//   host B (secondary): replfs pair join ...   (printed by init) takes the
//                        secret on standard input, never on the command
//                        line, stores it 0600, and runs the secondary.
import type { Command } from 'commander'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { fileURLToPath } from 'node:url'
import { describe, replError } from '../core/errors.js'
import { collect, groupFromFlags, parseSize } from './group-spec.js'
import { parseHostPort } from '../replicate/transport.js'
import { savePair } from './pair-settings.js'
import { registerPairRoles } from './pair-roles.js'

const cli = fileURLToPath(new URL('../cli.js', import.meta.url))

interface InitFlags {
  state: string, group: string, volume: string[], image: string[], mount: string, peer: string, listen?: string, remoteMount?: string,
  remoteState?: string, remoteVolume: string[], remoteImage: string[], mode: string, journalMax: string, onOverflow: string
}

const quote = (s: string) => /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`

export function registerPair (program: Command): void {
  const pair = program.command('pair').description('set up a primary and a secondary on two hosts (one command per host)')
  pair.command('init')
    .description('on the primary host: create the shared secret and print the command for the secondary host')
    .requiredOption('--state <dir>', 'this host\'s state directory (the secret goes there, mode 0600)')
    .requiredOption('--group <name>', 'consistency group name')
    .requiredOption('--mount <mountpoint>', 'where applications will use the volumes on this host')
    .requiredOption('--peer <host:port>', 'address the secondary will listen on')
    .option('--listen <host:port>', 'address this host listens on when it is the secondary, after a failover (default: this host\'s name, the --peer port)')
    .option('--remote-mount <mountpoint>', 'where applications use the volumes on the secondary host when it is the primary (default: the same as --mount)')
    .option('--volume <name=dir>', 'a directory volume on this host, repeatable', collect, [])
    .option('--image <name=file[:size]>', 'an image volume on this host, repeatable', collect, [])
    .option('--remote-state <dir>', 'state directory on the secondary host (default /var/lib/replfs/GROUP)')
    .option('--remote-volume <name=dir>', 'where a volume\'s copy lives on the secondary (default: the same path)', collect, [])
    .option('--remote-image <name=file>', 'where an image copy lives on the secondary (default: the same path)', collect, [])
    .option('--mode <async|sync>', 'replication mode', 'async')
    .option('--journal-max <size>', 'journal size limit', '1G')
    .option('--on-overflow <block|track>', 'policy at the journal limit', 'block')
    .action(async (f: InitFlags) => {
      try {
        init(f)
      } catch (err) {
        process.stderr.write(`replfs: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })
  pair.command('join')
    .description('on the secondary host: read the shared secret from standard input, store it, run the secondary')
    .requiredOption('--state <dir>', 'state directory on this host')
    .requiredOption('--group <name>', 'consistency group name')
    .requiredOption('--listen <host:port>', 'address to listen on for the primary')
    .option('--volume <name=dir>', 'a directory volume copy, repeatable', collect, [])
    .option('--image <name=file[:size]>', 'an image volume copy, repeatable', collect, [])
    .option('--mount <mountpoint>', 'also expose the copies read-only through FUSE')
    .option('--peer <host:port>', 'address the primary host listens on when it is the secondary (for `pair failover` and `pair switchover`)')
    .option('--peer-state <dir>', 'the primary host\'s state directory (default: the same as --state)')
    .option('--app-mount <mountpoint>', 'where applications use the volumes on this host when it is the primary')
    .option('--mode <async|sync>', 'replication mode when this host is the primary', 'async')
    .option('--journal-max <size>', 'journal size limit when this host is the primary', '1G')
    .option('--on-overflow <block|track>', 'policy at the journal limit when this host is the primary', 'block')
    .action(async (f: JoinFlags) => {
      try {
        await join_(f)
      } catch (err) {
        process.stderr.write(`replfs: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })
  registerPairRoles(pair)
}

function init (f: InitFlags): void {
  parseHostPort(f.peer)
  parseSize(f.journalMax)
  const state = resolve(f.state)
  const secretFile = join(state, 'secret')
  fs.mkdirSync(state, { recursive: true, mode: 0o700 })
  if (!fs.existsSync(secretFile)) fs.writeFileSync(secretFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
  const remote = (list: string[], flag: string) => new Map(list.map(s => { const i = s.indexOf('='); if (i <= 0) throw replError('USAGE', `${flag} wants NAME=PATH`); return [s.slice(0, i), s.slice(i + 1)] }))
  const rv = remote(f.remoteVolume, '--remote-volume')
  const ri = remote(f.remoteImage, '--remote-image')
  const remoteVols: string[] = []
  for (const v of f.volume) { const [name, dir] = [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]; remoteVols.push('--volume', `${name}=${rv.get(name) ?? resolve(dir)}`) }
  for (const v of f.image) {
    const name = v.slice(0, v.indexOf('='))
    const rest = v.slice(v.indexOf('=') + 1)
    const colon = rest.lastIndexOf(':')
    const file = colon > 0 ? rest.slice(0, colon) : rest
    const size = colon > 0 ? rest.slice(colon) : (fs.existsSync(file) ? `:${fs.statSync(file).size}` : '')
    remoteVols.push('--image', `${name}=${ri.get(name) ?? resolve(file)}${size}`)
  }
  const { host, port } = parseHostPort(f.peer)
  const listen = f.listen ?? `${hostname()}:${port}`
  parseHostPort(listen)
  const remoteState = f.remoteState ?? `/var/lib/replfs/${f.group}`
  const localVols = [...f.volume.flatMap(v => ['--volume', absolute(v)]), ...f.image.flatMap(v => ['--image', absolute(v)])]
  // The other host's settings travel in its join command: where this host
  // serves after a failover, and how the other host mounts as the primary.
  const roleFlags = ['--peer', listen, ...(remoteState === state ? [] : ['--peer-state', state]), '--app-mount', f.remoteMount ?? resolve(f.mount),
    ...(f.mode !== 'async' ? ['--mode', f.mode] : []), ...(f.journalMax !== '1G' ? ['--journal-max', f.journalMax] : []), ...(f.onOverflow !== 'block' ? ['--on-overflow', f.onOverflow] : [])]
  const joinCmd = ['replfs', 'pair', 'join', '--state', remoteState, '--group', f.group, '--listen', f.peer, ...remoteVols, ...roleFlags].map(quote).join(' ')
  const mount = ['replfs', 'mount', resolve(f.mount), '--group', f.group, '--state', state, ...localVols, '--peer', f.peer, '--mode', f.mode, '--journal-max', f.journalMax,
    '--on-overflow', f.onOverflow, '--secret-file', secretFile].map(quote).join(' ')
  savePair(state, {
    group: f.group, mode: f.mode, journalMax: f.journalMax, onOverflow: f.onOverflow,
    self: { listen, mount: resolve(f.mount), roMount: null, volumes: localVols },
    peer: { address: f.peer, state: remoteState }
  })
  console.log(`Shared secret: ${secretFile} (mode 0600).

1. On the secondary host (${host}), run this one command; it reads the secret
   from standard input, so send it over ssh from here:

   ssh root@${host} ${quote(joinCmd)} < ${secretFile}

   (or run \`${joinCmd}\` there and paste the secret
    from ${secretFile} when asked; or copy ${secretFile} to
    ${join(remoteState, 'secret')} there, mode 0600: \`replfs serve\` uses it)

2. Then on this host:

   ${mount}

Both hosts keep these settings (STATE/pair.json): later, \`replfs pair switchover\`,
\`pair failover\` and \`pair failback\` run the right commands on each host.`)
}

interface JoinFlags {
  state: string, group: string, listen: string, volume: string[], image: string[], mount?: string,
  peer?: string, peerState?: string, appMount?: string, mode: string, journalMax: string, onOverflow: string
}

/** NAME=PATH[:SIZE] with PATH made absolute (the saved commands run from anywhere). */
function absolute (v: string): string {
  const i = v.indexOf('=')
  return i > 0 ? `${v.slice(0, i)}=${resolve(v.slice(i + 1))}` : v
}

async function join_ (f: JoinFlags): Promise<void> {
  await groupFromFlags(f.group, f.volume, f.image, false) // check before storing anything
  parseHostPort(f.listen)
  if (process.stdin.isTTY) process.stderr.write('paste the pairing secret (from the primary\'s state directory), then Enter: ')
  const secret = (await readLine()).trim()
  if (Buffer.byteLength(secret) < 16) throw replError('USAGE', 'no pairing secret on standard input (at least 16 characters)')
  const state = resolve(f.state)
  fs.mkdirSync(state, { recursive: true, mode: 0o700 })
  const secretFile = join(state, 'secret')
  fs.writeFileSync(secretFile, secret + '\n', { mode: 0o600 })
  fs.chmodSync(secretFile, 0o600)
  if (f.peer) parseHostPort(f.peer)
  parseSize(f.journalMax)
  savePair(state, {
    group: f.group, mode: f.mode, journalMax: f.journalMax, onOverflow: f.onOverflow,
    self: { listen: f.listen, mount: f.appMount ? resolve(f.appMount) : null, roMount: f.mount ? resolve(f.mount) : null, volumes: [...f.volume.flatMap(v => ['--volume', absolute(v)]), ...f.image.flatMap(v => ['--image', absolute(v)])] },
    peer: { address: f.peer ?? null, state: f.peerState ? resolve(f.peerState) : f.peer ? state : null }
  })
  const args = ['serve', '--listen', f.listen, '--state', state, '--group', f.group, ...f.volume.flatMap(v => ['--volume', v]),
    ...f.image.flatMap(v => ['--image', v]), '--secret-file', secretFile, ...(f.mount ? ['--mount', f.mount] : [])]
  process.stderr.write(`replfs: secret stored in ${secretFile}; starting: replfs ${args.map(quote).join(' ')}\n`)
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig))
  await new Promise<void>(res => child.on('exit', code => { process.exitCode = code ?? 1; res() }))
}

function readLine (): Promise<string> {
  return new Promise((res, rej) => {
    let data = ''
    const onData = (d: Buffer) => {
      data += d.toString()
      const nl = data.indexOf('\n')
      if (nl >= 0) { done(); res(data.slice(0, nl)) }
    }
    const done = () => { process.stdin.removeListener('data', onData); process.stdin.pause() }
    process.stdin.on('data', onData)
    process.stdin.on('end', () => { done(); res(data) })
    process.stdin.on('error', rej)
  })
}
