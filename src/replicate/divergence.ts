// What a side changed since a common point, per file: the split-brain
// report (`replfs diverged`) and the account of a `resolve` (what it rolls
// back). Built from the side's own journal, which holds every change it
// made since its peer last acknowledged (so since any common point past
// that). Reports travel between the sides once, at the refusal, as JSON
// text checked by parseReport.
import type { Record, Seq } from '../core/records.js'
import type { Journal } from '../journal/journal.js'
import { insert, type Range } from '../capture/extent-map.js'

export interface FileChange {
  vol: string
  path: string
  ops: string[] // record kinds, in first-seen order (rename/link: "rename from", "rename to")
  bytesWritten: number // bytes of write records (a range written twice counts twice)
  ranges: Array<[number, number]> // distinct byte ranges written, coalesced, [start, end)
}

export interface ChangeReport {
  from: Seq // first sequence past the common point
  to: Seq // last sequence of the side
  complete: boolean // the journal held every sequence from..to (else: listed is a part)
  files: FileChange[]
  filesOmitted: number // past filesMax: counted, not listed
  bytesWritten: number
}

const filesMax = 2000
const rangesShownMax = 64
/** Ranges kept per file for a rollback: 1% of the 4 KiB blocks of a 1 GiB
 *  image written at random is ~2,600 ranges; past this bound the closest
 *  merge (more bytes sent, never fewer). 16,384 * ~24 bytes of JSON = ~400 KiB. */
const rangesKeptMax = 16_384

/** A path that must be made equal to the survivor's: restated whole (its
 *  content or subtree, when a namespace operation or a truncate touched
 *  it), or its metadata and the byte ranges either side wrote. */
export interface ChangedPath {
  vol: number
  path: string
  whole: boolean
  ranges: Array<[number, number]>
  xattrs?: string[] // names set or removed: those the survivor lacks are removed (a restate only sets)
}

/** What a side rolled back at `resolve`, for the survivor's resync. */
export interface Rollback { point: Seq, files: ChangedPath[] }

/** Operations after which only a whole restate is sure to undo them. */
const wholeOps = new Set(['create', 'mkdir', 'mknod', 'symlink', 'unlink', 'rmdir', 'rename from', 'rename to', 'link from', 'link to', 'state', 'truncate'])

export class ChangeCollector {
  private readonly files = new Map<string, { volNum: number, vol: string, path: string, ops: string[], bytes: number, ranges: Range[], xattrs: Set<string> }>()
  private bytes = 0

  constructor (private readonly volNames: readonly string[]) {}

  note (r: Record, seq: Seq): void {
    this.touch(r.vol, r.path, r.kind === 'rename' || r.kind === 'link' ? `${r.kind} from` : r.kind, f => {
      if (r.kind === 'setxattr' || r.kind === 'removexattr') f.xattrs.add(r.name)
      if (r.kind !== 'write') return
      f.bytes += r.data.length
      this.bytes += r.data.length
      f.ranges = insert(f.ranges, { start: r.off, end: r.off + r.data.length, seq }, rangesKeptMax)
    })
    if (r.kind === 'rename' || r.kind === 'link') this.touch(r.vol, r.to, `${r.kind} to`, () => {})
  }

  private touch (vol: number, path: string, op: string, fn: (f: { ops: string[], bytes: number, ranges: Range[], xattrs: Set<string> }) => void): void {
    const key = `${vol}\0${path}`
    let f = this.files.get(key)
    if (!f) this.files.set(key, f = { volNum: vol, vol: this.volNames[vol] ?? String(vol), path, ops: [], bytes: 0, ranges: [], xattrs: new Set() })
    if (!f.ops.includes(op)) f.ops.push(op)
    fn(f)
  }

  /** Every path with all its ranges (coalesced past extent-map's bound:
   *  more bytes, never fewer). */
  changed (): ChangedPath[] {
    return [...this.files.values()].map(f => ({
      vol: f.volNum, path: f.path, whole: f.ops.some(o => wholeOps.has(o)), ranges: f.ranges.map(r => [r.start, r.end] as [number, number]),
      ...(f.xattrs.size ? { xattrs: [...f.xattrs].sort() } : {})
    }))
  }

  report (from: Seq, to: Seq, complete: boolean): ChangeReport {
    const all = [...this.files.values()].sort((a, b) => a.vol.localeCompare(b.vol) || a.path.localeCompare(b.path))
    return {
      from, to, complete,
      files: all.slice(0, filesMax).map(f => ({ vol: f.vol, path: f.path, ops: f.ops, bytesWritten: f.bytes, ranges: f.ranges.slice(0, rangesShownMax).map(r => [r.start, r.end] as [number, number]) })),
      filesOmitted: Math.max(0, all.length - filesMax),
      bytesWritten: this.bytes
    }
  }
}

/** The side's changes from `from` to `to`, from its journal. */
export async function changesSince (journal: Journal, from: Seq, to: Seq, volNames: readonly string[]): Promise<ChangeReport> {
  return (await collectSince(journal, from, to, volNames)).report
}

/** The same, with every changed path whole (`complete`: the journal held
 *  every sequence; otherwise what is listed is only a part). `keep`: what
 *  of a record counts (restated parts the peer holds as they are do not,
 *  restated.ts unheldParts). */
export async function collectSince (journal: Journal, from: Seq, to: Seq, volNames: readonly string[], keep?: (r: Record, seq: Seq) => Record[]): Promise<{ report: ChangeReport, changed: ChangedPath[], complete: boolean }> {
  const all = new ChangeCollector(volNames)
  const c = { note: (r: Record, seq: Seq) => { for (const x of keep ? keep(r, seq) : [r]) all.note(x, seq) } }
  let expect = from
  let complete = true
  if (to >= from) {
    try {
      for await (const { batch } of journal.read(from)) {
        if (batch.seq > expect) complete = false // a hole (trimmed or damaged)
        batch.records.forEach((r, i) => { if (batch.seq + i >= from && batch.seq + i <= to) c.note(r, batch.seq + i) })
        expect = batch.seq + batch.records.length
        if (expect > to) break
      }
    } catch {
      complete = false
    }
    if (expect <= to) complete = false
  }
  return { report: all.report(from, to, complete), changed: all.changed(), complete }
}

/** Both sides' changed paths as one list, parents before children. */
export function unionChanged (a: ChangedPath[], b: ChangedPath[]): ChangedPath[] {
  const m = new Map<string, { vol: number, path: string, whole: boolean, ranges: Range[], xattrs: Set<string> }>()
  for (const p of [...a, ...b]) {
    const key = `${p.vol}\0${p.path}`
    let e = m.get(key)
    if (!e) m.set(key, e = { vol: p.vol, path: p.path, whole: false, ranges: [], xattrs: new Set() })
    e.whole ||= p.whole
    for (const x of p.xattrs ?? []) e.xattrs.add(x)
    for (const [start, end] of p.ranges) e.ranges = insert(e.ranges, { start, end, seq: 0 }, rangesKeptMax)
  }
  return [...m.values()].sort((x, y) => x.vol - y.vol || x.path.localeCompare(y.path))
    .map(e => ({ vol: e.vol, path: e.path, whole: e.whole, ranges: e.ranges.map(r => [r.start, r.end] as [number, number]), ...(e.xattrs.size ? { xattrs: [...e.xattrs].sort() } : {}) }))
}

/** A rollback list read from disk or the wire, checked; null if not one. */
export function parseRollback (text: string): Rollback | null {
  let v: unknown
  try { v = JSON.parse(text) } catch { return null }
  const o = v as Partial<Rollback>
  const uint = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  if (typeof o !== 'object' || o === null || !uint(o.point) || !Array.isArray(o.files)) return null
  for (const f of o.files) {
    if (typeof f !== 'object' || f === null || !uint(f.vol) || typeof f.path !== 'string' || typeof f.whole !== 'boolean' || !Array.isArray(f.ranges) ||
      !f.ranges.every(r => Array.isArray(r) && r.length === 2 && uint(r[0]) && uint(r[1]) && r[0] < r[1])) return null
    if (f.xattrs !== undefined && !(Array.isArray(f.xattrs) && f.xattrs.every(x => typeof x === 'string'))) return null
  }
  return o as Rollback
}

/** A report from the peer, checked field by field (it came off the wire). */
export function parseReport (text: string): ChangeReport | null {
  let v: unknown
  try { v = JSON.parse(text) } catch { return null }
  const o = v as Partial<ChangeReport>
  const uint = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  if (typeof o !== 'object' || o === null || !uint(o.from) || !uint(o.to) || typeof o.complete !== 'boolean' ||
    !uint(o.filesOmitted) || !uint(o.bytesWritten) || !Array.isArray(o.files) || o.files.length > filesMax) return null
  for (const f of o.files) {
    if (typeof f !== 'object' || f === null || typeof f.vol !== 'string' || typeof f.path !== 'string' || !uint(f.bytesWritten) ||
      !Array.isArray(f.ops) || !f.ops.every(x => typeof x === 'string') || !Array.isArray(f.ranges) ||
      !f.ranges.every(r => Array.isArray(r) && r.length === 2 && uint(r[0]) && uint(r[1]))) return null
  }
  return o as ChangeReport
}

/** Human lines of one side's report. */
export function describeReport (r: ChangeReport, indent = '  '): string[] {
  const lines = r.files.map(f => `${indent}${f.vol}/${f.path}: ${f.ops.join(', ')}${f.bytesWritten ? `; ${f.bytesWritten} bytes written in ${f.ranges.length} range(s) ${f.ranges.slice(0, 4).map(([s, e]) => `${s}-${e}`).join(' ')}${f.ranges.length > 4 ? ' ...' : ''}` : ''}`)
  if (r.filesOmitted) lines.push(`${indent}... and ${r.filesOmitted} more files`)
  if (!r.complete) lines.push(`${indent}(incomplete: this side's journal no longer holds every change since sequence ${r.from})`)
  if (lines.length === 0) lines.push(`${indent}(nothing)`)
  return lines
}

/** The report as wire text within `maxBytes`: files dropped from the end
 *  (and counted as omitted) until it fits. */
export function reportText (r: ChangeReport, maxBytes: number): string {
  let cur = r
  for (;;) {
    const text = JSON.stringify(cur)
    if (Buffer.byteLength(text) <= maxBytes || cur.files.length === 0) return text
    const keep = Math.floor(cur.files.length / 2)
    cur = { ...cur, files: cur.files.slice(0, keep), filesOmitted: cur.filesOmitted + cur.files.length - keep }
  }
}
