// `replfs mount`: a capturing mount of one directory or of a group.
import type { Command } from 'commander'
import { promises as fsp } from 'node:fs'
import { resolve } from 'node:path'
import { replError } from '../core/errors.js'
import { defaultPollUs } from '../fs/mount.js'
import { collect, groupFromFlags, singleFromSource, checkStateDir, writeGroupFile } from './group-spec.js'
import { startPrimary, isMountpointBusy } from './primary.js'
import { runDaemon } from './daemon.js'
import { addPeerOptions, ensureSecret, nodeId, planSecret, tlsFiles, type PeerFlags } from './peer-flags.js'
import { checkStatePlacement, checkStateRole, writeStateRole } from './state-role.js'
import { parseHostPort } from '../replicate/transport.js'
import { parseSize } from './group-spec.js'
import { checkUnlocked } from '../journal/lock.js'
import type { GroupSpec } from '../core/config.js'
import type { Replication } from './primary.js'
import { parseRetain } from '../capture/retention.js'

function replicationFromFlags (f: MountFlags, spec: GroupSpec, secret: Buffer): Replication {
  const { host, port } = parseHostPort(f.peer!)
  if (f.mode !== 'async' && f.mode !== 'sync') throw replError('USAGE', `--mode must be async or sync, not "${f.mode}"`)
  if (f.onOverflow !== 'block' && f.onOverflow !== 'track') throw replError('USAGE', `--on-overflow must be block or track, not "${f.onOverflow}"`)
  const syncTimeout = Number(f.syncTimeout)
  if (!(syncTimeout > 0)) throw replError('USAGE', `--sync-timeout must be a positive number of seconds, not "${f.syncTimeout}"`)
  return {
    host, port, tls: tlsFiles(f), mode: f.mode, syncTimeoutMs: syncTimeout * 1000,
    journalMaxBytes: parseSize(f.journalMax), onOverflow: f.onOverflow,
    identity: { role: 'primary', group: spec.group, node: '', volumes: spec.volumes.map(v => ({ name: v.name, kind: v.kind, size: v.size })), secret }
  }
}

interface MountFlags extends PeerFlags {
  state?: string, group?: string, volume?: string[], image?: string[]
  peer?: string, mode: string, syncTimeout: string, journalMax: string, onOverflow: string, retain?: string
  verifyInterval?: string, verifyRate: string
  ioUring: boolean
  pollUs: string
}

/** --poll-us: whole microseconds, at most 10 ms. */
export function parsePollUs (s: string): number {
  const n = Number(s)
  if (!/^\d+$/.test(s.trim()) || n > 10_000) throw replError('USAGE', `--poll-us ${s}: a whole number of microseconds from 0 to 10000`)
  return n
}

/** "90", "90s", "15m", "6h", "1d" → milliseconds. */
export function parseDuration (s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(s.trim())
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'] : NaN
  if (!(ms >= 1000)) throw replError('USAGE', `${flag} "${s}" is not a duration of at least a second (e.g. 90s, 15m, 6h, 1d)`)
  return ms
}

export function registerMount (program: Command): void {
  const cmd = program.command('mount')
    .description('mount a capturing, journalling filesystem over one directory or a group of volumes')
    .argument('<source-or-mountpoint>', 'SOURCE directory (single form) or MOUNTPOINT (group form)')
    .argument('[mountpoint]', 'MOUNTPOINT (single form)')
    .requiredOption('--state <dir>', 'state directory: journal, checkpoint, activity log')
    .option('--group <name>', 'consistency group name (group form)')
    .option('--volume <name=dir>', 'a directory volume of the group, repeatable', collect, [])
    .option('--image <name=file[:size]>', 'an image volume (fixed-size file, e.g. disk.img:1G), repeatable', collect, [])
    .option('--peer <host:port>', 'replicate to the secondary listening there (replfs serve)')
    .option('--mode <async|sync>', 'async: a write returns after the local journal; sync: after the secondary acknowledged it', 'async')
    .option('--sync-timeout <seconds>', 'sync mode: fall back to async when the secondary does not acknowledge within this', '10')
    .option('--journal-max <size>', 'journal size limit (queue of unacknowledged changes)', '1G')
    .option('--on-overflow <block|track>', 'at the limit: block new writes, or track changed extents only and resync them later', 'block')
    .option('--retain <size|duration>', 'without --peer: keep at most this much journal (e.g. 10G) or this much history (e.g. 7d); what is dropped is tracked for a later peer\'s resync')
    .option('--verify-interval <duration>', 'verify the secondary against this primary periodically (e.g. 6h): a pass this long after the last one ended')
    .option('--verify-rate <size>', 'with --verify-interval: bytes read per second on each side by a periodic pass', '32M')
    .option('--io-uring', 'serve FUSE over io_uring instead of /dev/fuse (Linux 6.14+; turns on fuse.enable_uring; REPLFS_IO_URING=1 makes it the default)',
      process.env.REPLFS_IO_URING === '1')
    .option('--poll-us <microseconds>', 'after each reply, poll for the next FUSE request this long before sleeping, while a CPU is idle (0: never; native-notes/performance.md 14)',
      process.env.REPLFS_POLL_US ?? String(defaultPollUs))
  addPeerOptions(cmd)
    .addHelpText('after', `
Forms:
  replfs mount SOURCE MOUNTPOINT --state DIR
      one directory volume, named after SOURCE, at the mount root
  replfs mount MOUNTPOINT --group NAME --state DIR --volume NAME=DIR ... --image NAME=FILE[:SIZE] ...
      a consistency group: each volume is a top-level entry NAME of the mount

Runs in the foreground; prints a line containing "ready" once mounted.
SIGINT/SIGTERM flush the journal, unmount and exit 0.`)
    .action(async (first: string, second: string | undefined, flags: MountFlags) => {
      await runDaemon(async log => {
        const single = second !== undefined
        if (single && (flags.group || flags.volume?.length || flags.image?.length)) {
          throw replError('USAGE', 'give either SOURCE MOUNTPOINT, or MOUNTPOINT with --group and --volume/--image')
        }
        if (!single && !flags.group) throw replError('USAGE', 'the group form needs --group NAME (or give SOURCE MOUNTPOINT)')
        const mountpoint = resolve(single ? second : first)
        const state = resolve(flags.state!)
        const { spec, toCreate } = single
          ? await singleFromSource(first)
          : await groupFromFlags(flags.group!, flags.volume ?? [], flags.image ?? [], false)
        const mst = await fsp.stat(mountpoint).catch(() => null)
        if (!mst || !mst.isDirectory()) throw replError('USAGE', `mountpoint ${mountpoint} does not exist or is not a directory`)
        if (await isMountpointBusy(mountpoint)) throw replError('USAGE', `mountpoint ${mountpoint} is busy: something is mounted there`)
        if (spec.volumes.some(v => v.path === mountpoint || mountpoint.startsWith(v.path + '/'))) {
          throw replError('USAGE', `mountpoint ${mountpoint} is inside a volume's backing directory`)
        }
        await checkUnlocked(state)
        await checkStateDir(state, spec)
        checkStatePlacement(state, spec, mountpoint)
        await checkStateRole(state, 'primary')
        if (!flags.peer) {
          // Flags that only mean something with a secondary would be silently ignored.
          if (flags.mode !== 'async') throw replError('USAGE', `--mode ${flags.mode} needs --peer`, 'sync mode waits for a secondary; give --peer HOST:PORT')
          if (flags.tlsCert || flags.tlsKey || flags.tlsCa) throw replError('USAGE', 'the --tls-* flags need --peer', 'TLS protects the link to a secondary; give --peer HOST:PORT')
          if (flags.secretFile) throw replError('USAGE', '--secret-file needs --peer')
          if (flags.verifyInterval) throw replError('USAGE', '--verify-interval needs --peer', 'verify compares with a secondary')
        } else if (flags.retain) {
          throw replError('USAGE', '--retain is for a primary without --peer', 'with a peer the journal holds what it has not acknowledged, up to --journal-max (see --on-overflow)')
        }
        const retain = flags.retain ? parseRetain(flags.retain) : null
        const secretPlan = flags.peer ? planSecret(state, flags.secretFile, parseHostPort(flags.peer).host, 'replicate to') : null
        const repl = flags.peer ? replicationFromFlags(flags, spec, secretPlan!.secret ?? Buffer.alloc(0)) : null
        const pollUs = parsePollUs(flags.pollUs)
        const verifyEvery = flags.verifyInterval ? { intervalMs: parseDuration(flags.verifyInterval, '--verify-interval'), rateBytesPerSec: parseSize(flags.verifyRate) } : null
        // Every check passed: now create what is missing.
        await fsp.mkdir(state, { recursive: true, mode: 0o700 })
        if (repl && secretPlan) repl.identity.secret = ensureSecret(secretPlan, log, 'the secondary (`replfs serve`)')
        for (const v of toCreate) {
          const fh = await fsp.open(v.path, 'wx', 0o600)
          await fh.truncate(v.size)
          await fh.close()
        }
        await writeGroupFile(state, spec)
        await writeStateRole(state, 'primary')
        if (repl) repl.identity.node = nodeId(state)
        const primary = await startPrimary(spec, state, mountpoint, log, repl, verifyEvery, retain, { ioUring: flags.ioUring, pollUs })
        const names = spec.volumes.map(v => `${v.name}(${v.kind})`).join(' ')
        console.log(`replfs: ready: ${mountpoint} group ${spec.group} volumes ${names} journal at sequence ${primary.journal.nextSeq}`)
        return how => primary.stop(how)
      })
    })
}
