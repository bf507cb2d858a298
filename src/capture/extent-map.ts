// Extent map: per volume, per file, the byte ranges changed and not yet
// acknowledged by the secondary, coalesced. Pure: no I/O.
//
// LIMITATIONS (the math, DRBD bitmap style)
// - Each range carries the highest sequence that touched it, so an ack of
//   sequence S drops exactly the ranges whose every write is <= S.
// - Ranges are kept sorted and disjoint; touching/overlapping ranges merge.
// - A file holds at most `rangesPerFileMax` (1024) ranges: 1024 * ~40 bytes
//   = ~40 KiB per file worst case. Past that, the two ranges with the
//   smallest gap merge (over-approximation: resync then also sends bytes in
//   that gap, which is harmless: it sends current data).
// - Files tracked are bounded by what the journal holds unacknowledged; a
//   100k-file tree with one range each is ~10 MB.
// - Offsets are JS numbers: exact to 2^53 bytes (8 PiB).
import type { Record, Seq } from '../core/records.js'

export interface Range { start: number, end: number, seq: Seq } // [start, end)

export const rangesPerFileMax = 1024

export class ExtentMap {
  // vol -> path -> sorted disjoint ranges
  private readonly vols = new Map<number, Map<string, Range[]>>()

  add (vol: number, path: string, start: number, end: number, seq: Seq): void {
    if (end <= start) return
    let files = this.vols.get(vol)
    if (!files) this.vols.set(vol, files = new Map())
    const ranges = files.get(path) ?? []
    files.set(path, insert(ranges, { start, end, seq }))
  }

  /** Follows one record: writes add ranges, truncates clip, unlinks drop,
   *  renames move; the rest changes no bytes. */
  note (r: Record, seq: Seq): void {
    if (r.kind === 'write') this.add(r.vol, r.path, r.off, r.off + r.data.length, seq)
    else if (r.kind === 'truncate') this.clip(r.vol, r.path, r.size)
    else if (r.kind === 'unlink') this.drop(r.vol, r.path)
    else if (r.kind === 'rename') this.rename(r.vol, r.path, r.to)
  }

  /** A truncate: bytes past `size` no longer exist; the truncate record
   *  itself carries the change, so only the ranges are clipped. */
  clip (vol: number, path: string, size: number): void {
    const ranges = this.vols.get(vol)?.get(path)
    if (!ranges) return
    const kept = ranges.filter(r => r.start < size).map(r => ({ ...r, end: Math.min(r.end, size) }))
    this.set(vol, path, kept)
  }

  /** unlink: the file's changes no longer need sending. */
  drop (vol: number, path: string): void {
    this.vols.get(vol)?.delete(path)
  }

  /** rename: moves a file's ranges, or every file under a directory. */
  rename (vol: number, from: string, to: string): void {
    const files = this.vols.get(vol)
    if (!files) return
    for (const [p, ranges] of [...files]) {
      if (p === from || p.startsWith(from + '/')) {
        files.delete(p)
        files.set(to + p.slice(from.length), ranges)
      }
    }
  }

  /** The peer holds everything up to `seq`. */
  ack (seq: Seq): void {
    for (const files of this.vols.values()) {
      for (const [p, ranges] of files) {
        const kept = ranges.filter(r => r.seq > seq)
        if (kept.length === 0) files.delete(p)
        else if (kept.length !== ranges.length) files.set(p, kept)
      }
    }
  }

  get (vol: number, path: string): readonly Range[] {
    return this.vols.get(vol)?.get(path) ?? []
  }

  * entries (): Generator<{ vol: number, path: string, ranges: readonly Range[] }> {
    for (const [vol, files] of this.vols) for (const [path, ranges] of files) yield { vol, path, ranges }
  }

  summary (): Array<{ vol: number, files: number, ranges: number, bytes: number }> {
    return [...this.vols].map(([vol, files]) => {
      let ranges = 0
      let bytes = 0
      for (const rs of files.values()) { ranges += rs.length; for (const r of rs) bytes += r.end - r.start }
      return { vol, files: files.size, ranges, bytes }
    })
  }

  toJSON (): Array<[number, string, Array<[number, number, number]>]> {
    return [...this.entries()].map(e => [e.vol, e.path, e.ranges.map(r => [r.start, r.end, r.seq] as [number, number, number])])
  }

  static fromJSON (rows: Array<[number, string, Array<[number, number, number]>]>): ExtentMap {
    const m = new ExtentMap()
    for (const [vol, path, ranges] of rows) for (const [s, e, q] of ranges) m.add(vol, path, s, e, q)
    return m
  }

  private set (vol: number, path: string, ranges: Range[]): void {
    const files = this.vols.get(vol)
    if (!files) return
    if (ranges.length === 0) files.delete(path)
    else files.set(path, ranges)
  }
}

/** Inserts r into sorted disjoint ranges, merging what it touches (and,
 *  past `max` ranges, the two closest). */
export function insert (ranges: Range[], r: Range, max = rangesPerFileMax): Range[] {
  // Fast path: appending past the end (sequential writes), merging with the last.
  const last = ranges[ranges.length - 1]
  if (!last || r.start > last.end) {
    ranges.push(r)
  } else if (r.start >= last.start) {
    last.end = Math.max(last.end, r.end)
    last.seq = Math.max(last.seq, r.seq)
  } else {
    let lo = 0
    while (lo < ranges.length && ranges[lo].end < r.start) lo++
    let hi = lo
    let start = r.start
    let end = r.end
    let seq = r.seq
    while (hi < ranges.length && ranges[hi].start <= r.end) {
      start = Math.min(start, ranges[hi].start)
      end = Math.max(end, ranges[hi].end)
      seq = Math.max(seq, ranges[hi].seq)
      hi++
    }
    ranges.splice(lo, hi - lo, { start, end, seq })
  }
  if (ranges.length > max) mergeSmallestGap(ranges)
  return ranges
}

function mergeSmallestGap (ranges: Range[]): void {
  let best = 0
  for (let i = 1; i < ranges.length - 1; i++) {
    if (ranges[i + 1].start - ranges[i].end < ranges[best + 1].start - ranges[best].end) best = i
  }
  const a = ranges[best]
  const b = ranges[best + 1]
  ranges.splice(best, 2, { start: a.start, end: b.end, seq: Math.max(a.seq, b.seq) })
}
