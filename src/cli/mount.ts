// `replfs mount`: a capturing mount of one directory or of a group.
import type { Command } from 'commander'
import { promises as fsp } from 'node:fs'
import { resolve } from 'node:path'
import { replError } from '../core/errors.js'
import { collect, groupFromFlags, singleFromSource, checkStateDir, writeGroupFile } from './group-spec.js'
import { startPrimary, isMountpointBusy } from './primary.js'
import { runDaemon } from './daemon.js'

interface MountFlags { state?: string, group?: string, volume?: string[], image?: string[] }

export function registerMount (program: Command): void {
  program.command('mount')
    .description('mount a capturing, journalling filesystem over one directory or a group of volumes')
    .argument('<source-or-mountpoint>', 'SOURCE directory (single form) or MOUNTPOINT (group form)')
    .argument('[mountpoint]', 'MOUNTPOINT (single form)')
    .requiredOption('--state <dir>', 'state directory: journal, checkpoint, activity log')
    .option('--group <name>', 'consistency group name (group form)')
    .option('--volume <name=dir>', 'a directory volume of the group, repeatable', collect, [])
    .option('--image <name=file[:size]>', 'an image volume (fixed-size file, e.g. disk.img:1G), repeatable', collect, [])
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
        await checkStateDir(state, spec)
        // Every check passed: now create what is missing.
        await fsp.mkdir(state, { recursive: true })
        for (const v of toCreate) {
          const fh = await fsp.open(v.path, 'wx', 0o600)
          await fh.truncate(v.size)
          await fh.close()
        }
        await writeGroupFile(state, spec)
        const primary = await startPrimary(spec, state, mountpoint, log)
        const names = spec.volumes.map(v => `${v.name}(${v.kind})`).join(' ')
        console.log(`replfs: ready: ${mountpoint} group ${spec.group} volumes ${names} journal at sequence ${primary.journal.nextSeq}`)
        return () => primary.stop()
      })
    })
}
