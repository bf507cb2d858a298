// `replfs serve`: the secondary. Listens for the primary, applies its
// batches to the volumes, optionally exposes them read-only through FUSE.
import type { Command } from 'commander'
import fs from 'node:fs'
import { resolve } from 'node:path'
import { replError } from '../core/errors.js'
import { Journal } from '../journal/journal.js'
import { checkUnlocked } from '../journal/lock.js'
import { openVolumes, closeVolumes } from '../volume/volume.js'
import { ApplyTarget } from '../apply/target.js'
import { Secondary } from '../replicate/receiver.js'
import { VolumeReader } from '../replicate/verify-read.js'
import { listen, parseHostPort } from '../replicate/transport.js'
import { collect, groupFromFlags, checkStateDir, parseSize, writeGroupFile } from './group-spec.js'
import { runDaemon } from './daemon.js'
import { addPeerOptions, ensureSecret, nodeId, planSecret, tlsFiles, type PeerFlags } from './peer-flags.js'
import { checkStatePlacement, checkStateRole, writeStateRole } from './state-role.js'
import { serveControl } from './control.js'
import { mountReadOnly } from './read-only-mount.js'
import { describeDiscarded, saveDiscarded } from './discard.js'

interface ServeFlags extends PeerFlags { listen: string, state: string, group?: string, volume: string[], image: string[], mount?: string, segmentSize: string }

export function registerServe (program: Command): void {
  const cmd = program.command('serve')
    .description('run a secondary: receive a group\'s journal from its primary and apply it to local copies')
    .requiredOption('--listen <host:port>', 'address to listen on for the primary')
    .requiredOption('--state <dir>', 'state directory: received journal, applied cursor')
    .option('--group <name>', 'consistency group name (must match the primary; default: the name of the only volume, as `mount SOURCE MOUNTPOINT` names it)')
    .option('--volume <name=dir>', 'a directory volume copy, repeatable', collect, [])
    .option('--image <name=file[:size]>', 'an image volume copy, repeatable', collect, [])
    .option('--mount <mountpoint>', 'also expose the copies read-only through FUSE')
    .option('--segment-size <size>', 'journal segment size; segments wholly applied (and on disk) are deleted, so the journal stays near one segment', '64M')
  addPeerOptions(cmd)
    .addHelpText('after', `
Prints a line containing "listening" once ready. One primary at a time.
A shared secret is always required: --secret-file, else STATE/secret,
created (0600) on a loopback --listen when missing; off loopback it must
exist (see \`replfs pair\`).
A bad frame or a record that would escape a volume ends that connection
with an error; the daemon keeps serving.`)
    .action(async (flags: ServeFlags) => {
      await runDaemon(async log => {
        const { host, port } = parseHostPort(flags.listen)
        const tls = tlsFiles(flags)
        const segmentBytes = parseSize(flags.segmentSize)
        if (segmentBytes < 64 * 1024) throw replError('USAGE', `--segment-size ${flags.segmentSize} is below 64K`)
        const state = resolve(flags.state)
        const secretPlan = planSecret(state, flags.secretFile, host, 'listen on')
        const only = flags.volume.length + flags.image.length === 1 ? [...flags.volume, ...flags.image][0].split('=')[0] : undefined
        const group = flags.group ?? only
        if (!group) throw replError('USAGE', '--group is needed when there is more than one volume')
        const { spec, toCreate } = await groupFromFlags(group, flags.volume, flags.image, false)
        const mountpoint = flags.mount ? resolve(flags.mount) : null
        if (mountpoint && !fs.existsSync(mountpoint)) throw replError('USAGE', `mountpoint ${mountpoint} does not exist`)
        await checkUnlocked(state)
        await checkStateDir(state, spec)
        checkStatePlacement(state, spec, mountpoint)
        await checkStateRole(state, 'secondary')
        // Every check passed: now create what is missing.
        fs.mkdirSync(state, { recursive: true, mode: 0o700 })
        const secret = ensureSecret(secretPlan, log, 'the primary (`replfs mount --peer`)')
        for (const v of toCreate) { fs.writeFileSync(v.path, '', { mode: 0o600 }); fs.truncateSync(v.path, v.size) }
        await writeGroupFile(state, spec)
        await writeStateRole(state, 'secondary')

        const journal = await Journal.open(state, { group: spec.group, segmentBytes })
        // Room for the checkpoint that trims applied batches when the
        // journal fills the state directory (journal/reserve.ts).
        if (!journal.keepReserve()) log(`state directory ${state}: no room for its reserve of free space yet; made once the journal is trimmed`)
        const vols = await openVolumes(spec.volumes)
        const target = new ApplyTarget(vols, spec.volumes)
        const identity = { role: 'secondary' as const, group: spec.group, node: nodeId(state), volumes: spec.volumes.map(v => ({ name: v.name, kind: v.kind, size: v.size })), secret }
        const secondary = new Secondary(journal, target, identity, log)
        const copyReader = new VolumeReader(spec.volumes)
        secondary.readCopy = items => copyReader.read(items)
        secondary.discard = async (j, point, held) => {
          const d = await saveDiscarded(state, spec, j, point, true, held)
          return { changed: d.changed, lines: [`failback: this side was demoted and the primary never had its sequences ${point + 1}..${j.lastSeq}: they are rolled back from the primary's data`, ...describeDiscarded(d)] }
        }
        secondary.startRecovery()
        const server = await listen(host, port, tls, c => secondary.attach(c), log)
        await serveControl(state, () => secondary.status())
        const ro = mountpoint ? await mountReadOnly(spec, mountpoint) : null
        const addr = server.address()
        const shown = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : flags.listen
        console.log(`replfs: listening on ${shown} group ${spec.group} applied ${secondary.status().appliedSeq}${ro ? `, read-only mount at ${mountpoint}` : ''}`)
        return async () => {
          server.close()
          await ro?.unmount()
          await secondary.close()
          await closeVolumes(vols)
          await journal.close()
        }
      })
    })
}
