// Online verify, the pure half: what differs between the primary's answer
// and the copy's for the same item read at the same sequence. No I/O.
// Both answers describe one instant of history (verify.ts reads them
// exactly at one sequence), so any difference here is a real divergence.
import type { VerifyEntry } from './messages.js'
import { displayName } from '../core/names.js'

export type MismatchKind = 'data' | 'missing' | 'extra' | 'type' | 'mode' | 'owner' | 'size' | 'target' | 'xattr' | 'links'

export interface Mismatch {
  vol: number
  volume: string // its name
  path: string // volume-relative ('' is the volume root, or the image)
  kind: MismatchKind
  detail: string // what each side holds, in words
  ranges?: Array<[number, number]> // data: byte ranges [start, end)
  /** xattr: names only the copy has (repair removes them) */
  extraXattrs?: string[]
  /** links: the paths of the primary's hard-link group */
  paths?: string[]
}

/** The unit of work of a verify pass (verify.ts): an entry (with `deep`,
 *  a directory's children and a file's blocks follow), a range of a
 *  file's blocks, or a hard-link group read whole in one request. */
export type VerifyTask =
  | { kind: 'entry', vol: number, path: string, deep: boolean }
  | { kind: 'blocks', vol: number, path: string, off: number, len: number }
  | { kind: 'links', vol: number, paths: string[] }

/** The primary's hard-link groups met in a pass, by device:inode. */
export type LinkGroups = Map<string, { vol: number, paths: string[] }>

export type Difference = Pick<Mismatch, 'kind' | 'detail' | 'extraXattrs'>

const permBits = 0o7777

function typeName (e: VerifyEntry): string {
  return e.type === 'other' ? `other (mode ${(e.mode & 0o170000).toString(8)})` : e.type
}

/** The differences of one path's entry: existence, type, then each
 *  attribute that type has. Times are not compared (the copy's are set by
 *  apply, and a read of the copy changes its atime). */
export function compareEntries (mine: VerifyEntry, theirs: VerifyEntry): Difference[] {
  if (mine.type === 'absent' && theirs.type === 'absent') return []
  if (theirs.type === 'absent') return [{ kind: 'missing', detail: `the primary has a ${typeName(mine)}, the secondary nothing` }]
  if (mine.type === 'absent') return [{ kind: 'extra', detail: `the secondary has a ${typeName(theirs)}, the primary nothing` }]
  if (mine.type !== theirs.type || (mine.type === 'other' && (mine.mode & 0o170000) !== (theirs.mode & 0o170000))) {
    return [{ kind: 'type', detail: `primary ${typeName(mine)}, secondary ${typeName(theirs)}` }]
  }
  const out: Difference[] = []
  const oct = (m: number) => (m & permBits).toString(8).padStart(4, '0')
  if (mine.type !== 'symlink' && (mine.mode & permBits) !== (theirs.mode & permBits)) out.push({ kind: 'mode', detail: `primary ${oct(mine.mode)}, secondary ${oct(theirs.mode)}` })
  if (mine.uid !== theirs.uid || mine.gid !== theirs.gid) out.push({ kind: 'owner', detail: `primary ${mine.uid}:${mine.gid}, secondary ${theirs.uid}:${theirs.gid}` })
  if (mine.type === 'file' && mine.size !== theirs.size) out.push({ kind: 'size', detail: `primary ${mine.size} bytes, secondary ${theirs.size} bytes` })
  if (mine.type === 'symlink' && mine.target !== theirs.target) out.push({ kind: 'target', detail: `primary -> ${JSON.stringify(mine.target)}, secondary -> ${JSON.stringify(theirs.target)}` })
  const x = compareXattrs(mine, theirs)
  if (x) out.push(x)
  if (mine.type !== 'dir' && mine.nlink !== theirs.nlink) out.push({ kind: 'links', detail: `primary ${mine.nlink} hard links, secondary ${theirs.nlink}` })
  return out
}

function compareXattrs (mine: VerifyEntry, theirs: VerifyEntry): Difference | null {
  const a = new Map(mine.xattrs.map(x => [x.name, Buffer.from(x.sum)]))
  const b = new Map(theirs.xattrs.map(x => [x.name, Buffer.from(x.sum)]))
  const missing = [...a.keys()].filter(n => !b.has(n))
  const extra = [...b.keys()].filter(n => !a.has(n))
  const changed = [...a.keys()].filter(n => b.has(n) && !a.get(n)!.equals(b.get(n)!))
  if (missing.length + extra.length + changed.length === 0) return null
  const parts: string[] = []
  if (missing.length) parts.push(`missing on the secondary: ${missing.join(', ')}`)
  if (extra.length) parts.push(`only on the secondary: ${extra.join(', ')}`)
  if (changed.length) parts.push(`values differ: ${changed.join(', ')}`)
  return { kind: 'xattr', detail: parts.join('; '), extraXattrs: extra }
}

/** Byte ranges whose block checksums differ, of a read of [off, off+len)
 *  in `block`s; a block only one side has (a shorter file) differs. */
export function differingRanges (off: number, len: number, block: number, mine: Uint8Array[], theirs: Uint8Array[]): Array<[number, number]> {
  const out: Array<[number, number]> = []
  const n = Math.max(mine.length, theirs.length)
  for (let i = 0; i < n; i++) {
    const a = mine[i]
    const b = theirs[i]
    if (a && b && Buffer.from(a).equals(Buffer.from(b))) continue
    const start = off + i * block
    out.push([start, Math.min(off + len, start + block)])
  }
  return coalesce(out)
}

/** Sorted, merged ranges. */
export function coalesce (ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0])
  const out: Array<[number, number]> = []
  for (const r of sorted) {
    const last = out[out.length - 1]
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1])
    else out.push([r[0], r[1]])
  }
  return out
}

/** The hard-link partition of entries read in one answer: the sets of item
 *  indexes that name one inode (absent entries left out), as a canonical
 *  string so two sides compare with ===. */
export function linkPartition (entries: Array<VerifyEntry | null>): string {
  const groups = new Map<number, number[]>()
  entries.forEach((e, i) => {
    if (!e || e.type === 'absent' || e.type === 'dir') return
    const g = groups.get(e.link)
    if (g) g.push(i)
    else groups.set(e.link, [i])
  })
  return [...groups.values()].map(g => g.join(',')).sort().join(' | ')
}

/** "3 bytes" / "4.0 KiB" ... for reports. */
export function humanBytes (n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`
  return `${n} B`
}

/** One line per mismatch, for a terminal. */
export function describeMismatch (m: Mismatch): string {
  const where = `${m.volume}:${m.path === '' ? '/' : displayName(m.path)}`
  if (m.kind === 'data') {
    const rs = (m.ranges ?? []).map(([a, b]) => `${a}-${b - 1}`)
    const shown = rs.length > 8 ? [...rs.slice(0, 8), `... (${rs.length} ranges)`] : rs
    const bytes = (m.ranges ?? []).reduce((n, [a, b]) => n + b - a, 0)
    return `${where}: data differs in bytes ${shown.join(', ')} (${humanBytes(bytes)})`
  }
  return `${where}: ${m.kind}: ${m.detail}`
}

/** The one summary line of a verify (report fields as in verify.ts). */
export function summaryLine (r: { clean: boolean, found: Mismatch[], remaining: Mismatch[], repaired: boolean, bytesCompared: number, entriesCompared: number, seconds: number, fromSeq: number, toSeq: number }): string {
  const kinds = (ms: Mismatch[]) => {
    const n = new Map<string, number>()
    for (const m of ms) n.set(m.kind, (n.get(m.kind) ?? 0) + 1)
    return [...n].map(([k, c]) => `${c} ${k}`).join(', ')
  }
  const rate = r.seconds > 0 ? ` (${humanBytes(Math.round(r.bytesCompared / r.seconds))}/s)` : ''
  const what = `${r.entriesCompared} entries and ${humanBytes(r.bytesCompared)} compared in ${r.seconds.toFixed(1)} s${rate}, sequences ${r.fromSeq}..${r.toSeq}`
  if (r.found.length === 0) return `verify: clean: ${what}`
  const found = `${r.found.length} mismatches (${kinds(r.found)})`
  if (!r.repaired) return `verify: DIVERGENT: ${found}; ${what}`
  if (r.clean) return `verify: repaired: ${found} resent through the journal and verified again: clean; ${what}`
  return `verify: DIVERGENT after repair: ${found} resent, ${r.remaining.length} still differ (${kinds(r.remaining)}); ${what}`
}
