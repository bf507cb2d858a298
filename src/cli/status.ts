// `replfs status`: a running daemon's state, from its control socket.
import type { Command } from 'commander'
import { resolve } from 'node:path'
import { queryControl } from './control.js'
import { describe } from '../core/errors.js'

type Status = { [k: string]: unknown }

export function registerStatus (program: Command): void {
  program.command('status')
    .description('show the state of a running mount or secondary: role, peer, mode, sequences, lag, resync progress')
    .requiredOption('--state <dir>', 'state directory of the daemon')
    .option('--json', 'machine-readable output')
    .action(async (flags: { state: string, json?: boolean }) => {
      try {
        const s = await queryControl(resolve(flags.state)) as Status
        console.log(flags.json ? JSON.stringify(s, null, 2) : humanStatus(s))
      } catch (err) {
        process.stderr.write(`replfs: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })
}

const silence = (s: Status) => Number(s.peerSilentSec) > 0 ? ` (nothing heard for ${String(s.peerSilentSec)} s)` : ''

function bytes (n: unknown): string {
  const v = Number(n ?? 0)
  if (v >= 1 << 30) return `${(v / (1 << 30)).toFixed(2)} GiB`
  if (v >= 1 << 20) return `${(v / (1 << 20)).toFixed(1)} MiB`
  if (v >= 1 << 10) return `${(v / (1 << 10)).toFixed(1)} KiB`
  return `${v} B`
}

export function humanStatus (s: Status): string {
  const lines: string[] = []
  const add = (k: string, v: unknown) => lines.push(`${k.padEnd(14)} ${String(v)}`)
  add('role', s.role)
  add('group', s.group)
  if (s.role === 'primary') {
    add('mode', `${String(s.mode)}${s.syncFallback ? ' (fallen back to async: secondary not acknowledging)' : ''}`)
    add('peer', `${String(s.peer ?? 'none')} ${String(s.peerState ?? '')}${silence(s)}`)
    add('last seq', s.lastSeq ?? (s.journal as Status | undefined)?.nextSeq)
    add('acked seq', s.ackedSeq)
    add('lag', `${String(s.lagRecords ?? 0)} records, ${bytes(s.lagBytes)}, ${Number(s.lagSeconds ?? 0).toFixed(1)} s`)
    add('journal', `${bytes(s.journalBytes ?? (s.journal as Status | undefined)?.bytes)} of ${bytes(s.journalMaxBytes)} (${String(s.overflow ?? '-')} on overflow)${s.tracking ? ', TRACKING changes only' : ''}`)
    const k = s.retention as Status | undefined
    if (k) {
      add('retention', `${String(k.retain)}: ${String(k.droppedSegments)} segments dropped (${String(k.droppedRecords)} records, ${bytes(k.droppedBytes)}, through sequence ${String(k.droppedThroughSeq)}${k.lastDropAt ? `, last at ${String(k.lastDropAt)}` : ''})`)
      if (Number(k.foldedRecords) > 0) add('tracked', `${String(k.trackedPaths)} paths, ${String(k.trackedRanges)} byte ranges: a later peer gets a resync of them (${String(k.foldedRecords)} dropped records no peer had)`)
      if (k.waiting) add('retention', `waiting: ${String(k.waiting)}`)
    }
  } else {
    add('peer', `${String(s.peer ?? '-')} ${String(s.peerState)}${silence(s)}`)
    add('applied seq', s.appliedSeq)
    if (Number(s.storedSeq) > Number(s.appliedSeq)) add('stored seq', `${String(s.storedSeq)} (in the journal, applied next)`)
    add('consistent', s.consistent ? 'yes' : s.applyError ? 'no (applying is stuck: see apply error)' : 'no (resync in progress or interrupted)')
    add('applied', `${String(s.batchesApplied)} batches, ${bytes(s.bytesApplied)}, ${String(s.copyFlushes)} flushes of the copy`)
  }
  const r = s.resync as Status | null | undefined
  if (r) {
    const pct = Number(r.bytesTotal) > 0 ? (100 * Number(r.bytesDone) / Number(r.bytesTotal)).toFixed(1) : '0'
    add('resync', `${String(r.kind)} ${String(r.phase)} ${bytes(r.bytesDone)} of ${bytes(r.bytesTotal)} (${pct}%), ${bytes(r.rateBytesPerSec)}/s, ETA ${r.etaSec ?? '?'} s, ${bytes(r.bytesSent)} sent`)
  }
  const v = s.verify as Status | undefined
  if (v?.running) {
    const p = v.running as Status
    const pct = Number(p.bytesTotal) > 0 ? (100 * Math.min(1, Number(p.bytesDone) / Number(p.bytesTotal))).toFixed(1) : '0'
    add('verify', `${p.periodic ? 'periodic pass' : 'running'}, ${String(p.phase)}: ${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)} (${pct}%), ${String(p.entriesDone)} entries, ${bytes(p.rateBytesPerSec)}/s, ${String(p.mismatches)} mismatches so far`)
  }
  if (v?.last) add('last verify', `${String((v.last as Status).at)}: ${String((v.last as Status).summary)}`)
  if (v?.intervalSec) add('verify every', `${String(v.intervalSec)} s at ${bytes(v.rateBytesPerSec)}/s${v.nextAt ? `, next at ${String(v.nextAt)}` : ''}`)
  const a = s.applyError as Status | null | undefined
  if (a) add('apply error', `STUCK at sequence ${String(a.seq)}, volume ${String(a.vol)} path ${JSON.stringify(a.path)} since ${String(a.since)} (${String(a.attempts)} attempts): ${String(a.message)}`)
  const j = s.journalError as Status | null | undefined
  if (j) add('journal error', `appends failing since ${String(j.since)}, retried: ${String(j.message)}`)
  for (const d of (s.damage as string[] | undefined) ?? []) add('damage', d)
  if (s.decision) add('pair', s.decision)
  if (s.sentBytes !== undefined) add('sent', bytes(s.sentBytes))
  const sb = s.splitBrain as Status | null | undefined
  if (sb) {
    add('SPLIT BRAIN', `since sequence ${String(sb.point)} (generation ${String(sb.generation)}), found ${String(sb.detected)}: ${String(sb.localFiles)} files changed here, ${String(sb.remoteFiles ?? '?')} on the peer`)
    add('way out', sb.wayOut)
  }
  if (s.lastError) add('last error', s.lastError)
  return lines.join('\n')
}
