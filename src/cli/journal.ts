// `replfs journal inspect|replay`: look into a state directory offline, and
// rebuild a copy from it. Both open the journal read-only (no lock, no tail
// repair), so they are safe next to a running mount.
import { Command, InvalidArgumentError } from 'commander'
import { promises as fsp } from 'node:fs'
import { basename, join } from 'node:path'
import type { GroupSpec, VolumeSpec } from '../core/config.js'
import type { Record, RecordKind } from '../core/records.js'
import { describe, replError } from '../core/errors.js'
import { describeRecord } from '../journal/codec.js'
import { Journal } from '../journal/journal.js'
import { listSegments, scanSegment } from '../journal/segments.js'
import { closeVolumes, openVolumes } from '../volume/volume.js'
import { journalVolumes, replayJournal } from '../apply/replay.js'
import { readGroupFile } from './group-spec.js'
import { readCheckpoint } from '../journal/checkpoint.js'
import { ExtentMap } from '../capture/extent-map.js'
import { DirtySet } from '../capture/dirty-set.js'
import { nativeCore } from '../native/addon.js'

export function registerJournal (program: Command): void {
  const journal = program.command('journal').description('inspect or replay a group journal in a state directory')
  journal.command('inspect')
    .description('segments, damage, batch and record counts of a state directory\'s journal')
    .argument('<stateDir>', 'the group\'s state directory')
    .option('--json', 'machine-readable output')
    .option('--records', 'list every record: sequence, volume, operation, path, offset, length')
    .action(guard(async (dir: string, o: { json?: boolean, records?: boolean }) => inspect(dir, o)))
  journal.command('replay')
    .description('apply the journal\'s records in order to copies of the volumes')
    .argument('<stateDir>', 'the group\'s state directory')
    .option('--volume <name=dir>', 'target directory for a directory volume (repeat per volume)', collect, [])
    .option('--image <name=file>', 'target file for an image volume (repeat per volume)', collect, [])
    .option('--from <seq>', 'first sequence to apply', seqArg)
    .option('--to <seq>', 'last sequence to apply', seqArg)
    .action(guard(async (dir: string, o: ReplayOpts) => replay(dir, o)))
}

interface ReplayOpts { volume: string[], image: string[], from?: number, to?: number }

/** One line on stderr and a non-zero exit, for every failure. */
function guard<A extends unknown[]> (fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  return async (...a) => {
    try {
      // Segments are read in chunks of 4 MiB: from memory already had, as
      // in a daemon (reading 512 MiB took twice the CPU without, here).
      nativeCore().keepFreedMemory()
      await fn(...a)
    } catch (err) {
      process.stderr.write(`replfs: ${describe(err)}\n`)
      process.exitCode = 1
    }
  }
}

function collect (v: string, prev: string[]): string[] { return [...prev, v] }

function seqArg (v: string): number {
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('not a sequence number (1 or more)')
  return n
}

/** group.json (written by `mount`), checked field by field: replay trusts
 *  its volume numbers to route records. */
async function loadGroup (dir: string): Promise<GroupSpec> {
  const v = await readGroupFile(dir) as Partial<GroupSpec> | null
  if (v === null) throw replError('USAGE', `cannot read ${join(dir, 'group.json')}`, 'is this a replfs state directory?')
  const ok = typeof v.group === 'string' && Array.isArray(v.volumes) && v.volumes.every((x: Partial<VolumeSpec>) =>
    Number.isInteger(x.num) && typeof x.name === 'string' && (x.kind === 'dir' || x.kind === 'image') && typeof x.path === 'string' && Number.isInteger(x.size))
  if (!ok) throw replError('USAGE', `${join(dir, 'group.json')} is not a group description`)
  return { group: v.group!, volumes: v.volumes!, single: v.single === true }
}

async function openJournal (dir: string, group: string): Promise<Journal> {
  const st = await fsp.stat(dir).catch(() => null)
  if (!st?.isDirectory()) throw replError('USAGE', `state directory ${dir} does not exist`)
  return Journal.open(dir, { group, readOnly: true })
}

// ---- inspect ----------------------------------------------------------------

interface SegmentReport { name: string, first: number | null, last: number | null, batches: number, bytes: number, damage: null | { offset: number, reason: string, cutBytes: number } }

async function inspect (dir: string, o: { json?: boolean, records?: boolean }): Promise<void> {
  const group = await loadGroup(dir).catch(() => null)
  const volName = (n: number): string => group?.volumes.find(v => v.num === n)?.name ?? String(n)
  // Per-segment facts come from our own scan, so damage anywhere is shown;
  // the journal's open then says what it would cut (or refuses, mid-journal).
  const segments: SegmentReport[] = []
  const byKind: { [k in RecordKind]?: number } = {}
  const byVolume: { [name: string]: number } = {}
  const listed: Array<{ seq: number, vol: string, kind: string, path: string, off: number | null, len: number | null, what: string }> = []
  let batches = 0; let records = 0; let dataBytes = 0
  const stat = await fsp.stat(dir).catch(() => null)
  if (!stat?.isDirectory()) throw replError('USAGE', `state directory ${dir} does not exist`)
  // The extent map: byte ranges changed past the acknowledged sequence (what
  // a resync would send), plus what a tracking primary holds in its dirty set.
  const acked = (await readCheckpoint(dir).catch(() => null))?.acked ?? 0
  const extents = new ExtentMap()
  const dirty = DirtySet.load(dir)
  for (const seg of await listSegments(dir)) {
    const scan = await scanSegment(seg.path)
    const last = scan.batches[scan.batches.length - 1]?.batch
    segments.push({
      name: basename(seg.path),
      first: scan.batches[0]?.batch.seq ?? null,
      last: last ? last.seq + last.records.length - 1 : null,
      batches: scan.batches.length,
      bytes: seg.bytes,
      damage: scan.damage && { ...scan.damage, cutBytes: seg.bytes - scan.goodBytes }
    })
    for (const { batch } of scan.batches) {
      batches++
      batch.records.forEach((r, i) => {
        records++
        byKind[r.kind] = (byKind[r.kind] ?? 0) + 1
        byVolume[volName(r.vol)] = (byVolume[volName(r.vol)] ?? 0) + 1
        if (r.kind === 'write') dataBytes += r.data.length
        if (batch.seq + i > acked) extents.note(r, batch.seq + i)
        if (o.records) listed.push(recordRow(batch.seq + i, volName(r.vol), r))
      })
    }
  }
  let opened: Journal | null = null
  let openError: string | null = null
  try { opened = await openJournal(dir, group?.group ?? '') } catch (err) { openError = describe(err) }
  const cp = opened?.checkpoint
  const report = {
    dir, group: group?.group ?? null, checkpoint: cp === undefined ? null : { acked: cp.acked, appliedSeq: cp.appliedSeq, generation: cp.generation, ackedHash: cp.ackedHash ? Buffer.from(cp.ackedHash).toString('hex') : null }, nextSeq: opened?.nextSeq ?? null,
    recovery: opened?.recovery ?? null, openError, segments, batches, records, dataBytes, byKind, byVolume,
    extentMap: extents.summary().map(e => ({ volume: volName(e.vol), files: e.files, ranges: e.ranges, bytes: e.bytes })),
    tracked: dirty.empty ? null : { paths: dirty.marks.size, extents: dirty.extents.summary().map(e => ({ volume: volName(e.vol), files: e.files, ranges: e.ranges, bytes: e.bytes })) },
    ...(o.records ? { list: listed } : {})
  }
  await opened?.close()
  if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  else printInspect(report, listed, o.records === true)
  if (openError) process.exitCode = 1
}

function recordRow (seq: number, vol: string, r: Record): { seq: number, vol: string, kind: string, path: string, off: number | null, len: number | null, what: string } {
  const off = r.kind === 'write' ? r.off : null
  const len = r.kind === 'write' ? r.data.length : r.kind === 'setxattr' ? r.value.length : null
  return { seq, vol, kind: r.kind, path: r.path, off, len, what: describeRecord(r) }
}

function printInspect (rep: {
  dir: string, group: string | null, checkpoint: { acked: number, appliedSeq: number, generation: string } | null, nextSeq: number | null,
  recovery: { segment: string, offset: number, cutBytes: number, reason: string } | null, openError: string | null,
  segments: SegmentReport[], batches: number, records: number, dataBytes: number, byKind: object, byVolume: object
  extentMap: Array<{ volume: string, files: number, ranges: number, bytes: number }>
  tracked: null | { paths: number, extents: Array<{ volume: string, files: number, ranges: number, bytes: number }> }
}, listed: ReturnType<typeof recordRow>[], withRecords: boolean): void {
  const out: string[] = [`state dir ${rep.dir}${rep.group ? `, group ${rep.group}` : ''}`]
  if (rep.checkpoint) out.push(`checkpoint: acked ${rep.checkpoint.acked}, applied ${rep.checkpoint.appliedSeq}, generation ${rep.checkpoint.generation || '-'}`)
  out.push(`segments: ${rep.segments.length}`)
  for (const s of rep.segments) {
    const range = s.first === null ? 'no batches' : `seq ${s.first}..${s.last}, ${s.batches} batches`
    const crc = s.damage ? `DAMAGED at byte ${s.damage.offset} (${s.damage.reason}), ${s.damage.cutBytes} bytes after the good prefix` : 'frames ok'
    out.push(`  ${s.name}  ${range}, ${s.bytes} bytes, ${crc}`)
  }
  if (rep.recovery) out.push(`torn tail: ${rep.recovery.cutBytes} bytes at byte ${rep.recovery.offset} of ${rep.recovery.segment} (${rep.recovery.reason}); a writable open cuts it`)
  if (rep.openError) out.push(`journal cannot be opened: ${rep.openError}`)
  out.push(`batches ${rep.batches}, records ${rep.records}, data bytes ${rep.dataBytes}${rep.nextSeq !== null ? `, next sequence ${rep.nextSeq}` : ''}`)
  out.push(`by operation: ${counts(rep.byKind)}`)
  out.push(`by volume: ${counts(rep.byVolume)}`)
  const ext = (l: typeof rep.extentMap) => l.length ? l.map(e => `${e.volume}: ${e.files} files, ${e.ranges} ranges, ${e.bytes} bytes`).join('; ') : 'empty'
  out.push(`extent map (changed past acknowledged sequence): ${ext(rep.extentMap)}`)
  if (rep.tracked) out.push(`tracked after an overflow (resync pending): ${rep.tracked.paths} paths/metadata, ${ext(rep.tracked.extents)}`)
  if (withRecords) for (const r of listed) out.push(`${r.seq}\t${r.vol}\t${r.what}`)
  process.stdout.write(out.join('\n') + '\n')
}

function counts (o: object): string {
  const e = Object.entries(o)
  return e.length ? e.map(([k, v]) => `${k} ${String(v)}`).join(', ') : 'none'
}

// ---- replay -----------------------------------------------------------------

async function replay (dir: string, o: ReplayOpts): Promise<void> {
  const group = await loadGroup(dir)
  if (o.from !== undefined && o.to !== undefined && o.from > o.to) throw replError('USAGE', `--from ${o.from} is after --to ${o.to}`)
  const specs: VolumeSpec[] = []
  const target = (arg: string, kind: VolumeSpec['kind']): void => {
    const m = /^([^=]+)=(.+)$/.exec(arg)
    if (!m) throw replError('USAGE', `"${arg}" is not NAME=${kind === 'dir' ? 'DIR' : 'FILE'}`)
    const v = group.volumes.find(x => x.name === m[1])
    if (!v) throw replError('USAGE', `volume ${m[1]} is not in group ${group.group} (it has: ${group.volumes.map(x => x.name).join(', ')})`)
    if (v.kind !== kind) throw replError('USAGE', `volume ${v.name} is a${v.kind === 'dir' ? ' directory' : 'n image'} volume: give it with --${v.kind === 'dir' ? 'volume' : 'image'}`)
    if (specs.some(s => s.num === v.num)) throw replError('USAGE', `volume ${v.name} is given twice`)
    specs.push({ ...v, path: m[2] })
  }
  for (const a of o.volume) target(a, 'dir')
  for (const a of o.image) target(a, 'image')
  const j = await openJournal(dir, group.group)
  try {
    const range = { from: o.from, to: o.to }
    const missing = [...await journalVolumes(j, range)].filter(n => !specs.some(s => s.num === n))
    if (missing.length) {
      const names = missing.map(n => group.volumes.find(v => v.num === n)?.name ?? `#${n}`)
      throw replError('USAGE', `the journal has records for volume(s) ${names.join(', ')} but no target was given`, 'add --volume NAME=DIR or --image NAME=FILE for each')
    }
    if (j.recovery) process.stderr.write(`replfs: note: journal has a torn tail (${j.recovery.reason}, ${j.recovery.cutBytes} bytes); replaying the good prefix\n`)
    const vols = await openVolumes(specs)
    try {
      const r = await replayJournal(j, vols, range)
      process.stdout.write(r.records === 0 ? 'nothing to replay\n' : `replayed ${r.records} records in ${r.batches} batches (sequences ${r.first}..${r.last}) to ${specs.length} volume(s)\n`)
    } finally { await closeVolumes(vols) }
  } finally { await j.close() }
}
