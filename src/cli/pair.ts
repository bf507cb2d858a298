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
import { fileURLToPath } from 'node:url'
import { describe, replError } from '../core/errors.js'
import { collect, groupFromFlags, parseSize } from './group-spec.js'
import { parseHostPort } from '../replicate/transport.js'

const cli = fileURLToPath(new URL('../cli.js', import.meta.url))

interface InitFlags {
  state: string, group: string, volume: string[], image: string[], mount: string, peer: string,
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
    .action(async (f: JoinFlags) => {
      try {
        await join_(f)
      } catch (err) {
        process.stderr.write(`replfs: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })
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
  const { host } = parseHostPort(f.peer)
  const remoteState = f.remoteState ?? `/var/lib/replfs/${f.group}`
  const joinCmd = ['replfs', 'pair', 'join', '--state', remoteState, '--group', f.group, '--listen', f.peer, ...remoteVols].map(quote).join(' ')
  const mount = ['replfs', 'mount', resolve(f.mount), '--group', f.group, '--state', state, ...f.volume.flatMap(v => ['--volume', v]),
    ...f.image.flatMap(v => ['--image', v]), '--peer', f.peer, '--mode', f.mode, '--journal-max', f.journalMax,
    '--on-overflow', f.onOverflow, '--secret-file', secretFile].map(quote).join(' ')
  console.log(`Shared secret: ${secretFile} (mode 0600).

1. On the secondary host (${host}), run this one command; it reads the secret
   from standard input, so send it over ssh from here:

   ssh root@${host} ${quote(joinCmd)} < ${secretFile}

   (or run \`${joinCmd}\` there and paste the secret
    from ${secretFile} when asked; or copy ${secretFile} to
    ${join(remoteState, 'secret')} there, mode 0600: \`replfs serve\` uses it)

2. Then on this host:

   ${mount}`)
}

interface JoinFlags { state: string, group: string, listen: string, volume: string[], image: string[], mount?: string }

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
