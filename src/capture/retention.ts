// Retention of a primary without a peer (`mount --retain SIZE|DURATION`):
// instead of growing forever, the journal keeps at most SIZE bytes, or the
// records of the last DURATION. Whole segments go, oldest first, never the
// newest (the one being appended to), so it holds a little less than SIZE
// after a drop and may pass it by up to one segment before the next.
//
// Nothing is dropped silently. A dropped record that no peer acknowledged
// is folded into the dirty set first (paths, metadata, byte ranges, the
// same as an overflow in `track` mode: replicate/overflow.ts), which is
// persisted before the segment goes: a later peer that had the history up
// to the acknowledged point gets a resync of exactly those changes (a new
// peer gets a full resync anyway). The log and `status` say what went.
//
// Records the backing store may still need redone after a power loss
// (past the backing sync's point) are never dropped: retention waits for
// the next backing sync (brought forward by the journal's growth) instead.
//
// Runs on the JS thread; one pass at a time.
import fs from 'node:fs'
import type { Seq } from '../core/records.js'
import { describe, replError } from '../core/errors.js'
import type { Journal } from '../journal/journal.js'
import type { DirtySet } from './dirty-set.js'

export type RetainPolicy = { maxBytes: number } | { maxAgeMs: number }

const checkEveryMs = 1000
const units: { [u: string]: number } = { s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const sizeUnits: { [u: string]: number } = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** "10G", "512M", "1048576" (bytes; K/M/G/T are powers of 1024) or "90s",
 *  "30m"/"30min", "12h", "7d", "2w" (a duration: m is minutes). */
export function parseRetain (s: string): RetainPolicy {
  const t = s.trim()
  const d = /^(\d+)(s|m|min|h|d|w)$/.exec(t)
  if (d) {
    const ms = Number(d[1]) * units[d[2]]
    if (!(ms > 0) || !Number.isSafeInteger(ms)) throw replError('USAGE', `--retain ${s}: the duration must be positive`)
    return { maxAgeMs: ms }
  }
  const b = /^(\d+)([KMGT]?)(i?B)?$/i.exec(t)
  if (b) {
    const bytes = Number(b[1]) * sizeUnits[b[2].toUpperCase()]
    if (!Number.isSafeInteger(bytes) || bytes < 1024 * 1024) throw replError('USAGE', `--retain ${s}: keep at least 1M of journal`)
    return { maxBytes: bytes }
  }
  throw replError('USAGE', `bad --retain "${s}"`, 'a size (e.g. 10G, 512M) or a duration (e.g. 90s, 30m, 12h, 7d, 2w)')
}

export function describeRetain (p: RetainPolicy): string {
  if ('maxBytes' in p) return `${p.maxBytes} bytes`
  const s = p.maxAgeMs / 1000
  return s % 86400 === 0 ? `${s / 86400} d` : s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`
}

export interface RetentionStatus {
  retain: string
  maxBytes: number | null
  maxAgeSec: number | null
  droppedSegments: number
  droppedRecords: number
  droppedBytes: number
  /** Dropped records no peer had acknowledged: folded into the dirty set. */
  foldedRecords: number
  /** The journal holds nothing before this sequence any more (0: nothing dropped). */
  droppedThroughSeq: Seq
  lastDropAt: string | null
  /** A later peer (one that had this history) gets a resync of these. */
  trackedPaths: number
  trackedRanges: number
  /** Over the limit but waiting (for the backing sync), or the last error. */
  waiting: string | null
}

export class Retention {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private readonly st: Omit<RetentionStatus, 'trackedPaths' | 'trackedRanges'>

  constructor (private readonly journal: Journal, private readonly dirty: DirtySet, readonly policy: RetainPolicy,
    /** The backing store is durable through this sequence. */
    private readonly floor: () => Seq,
    private readonly log: (l: string) => void, private readonly now: () => number = Date.now) {
    this.st = {
      retain: describeRetain(policy),
      maxBytes: 'maxBytes' in policy ? policy.maxBytes : null,
      maxAgeSec: 'maxAgeMs' in policy ? policy.maxAgeMs / 1000 : null,
      droppedSegments: 0, droppedRecords: 0, droppedBytes: 0, foldedRecords: 0, droppedThroughSeq: 0, lastDropAt: null, waiting: null
    }
  }

  start (): void {
    this.timer = setInterval(() => { void this.check() }, checkEveryMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  status (): RetentionStatus {
    const ranges = this.dirty.extents.summary().reduce((n, s) => n + s.ranges, 0)
    return { ...this.st, trackedPaths: this.dirty.marks.size, trackedRanges: ranges }
  }

  /** Drops oldest segments while the journal is over its retention (one pass at a time). */
  check (): Promise<void> {
    this.running ??= this.pass().finally(() => { this.running = null })
    return this.running
  }

  private over (): boolean {
    const p = this.policy
    if ('maxBytes' in p) return this.journal.bytes > p.maxBytes
    const o = this.journal.oldest
    if (!o) return false
    // The oldest segment's last write is its newest record's time.
    const mtime = fs.statSync(o.path, { throwIfNoEntry: false })?.mtimeMs
    return mtime !== undefined && this.now() - mtime > p.maxAgeMs
  }

  private async pass (): Promise<void> {
    try {
      while (this.over()) {
        const o = this.journal.oldest
        if (!o) break
        if (o.nextFirst - 1 > this.floor()) {
          this.st.waiting = `the backing store is synced through sequence ${this.floor()}; the oldest segment holds up to ${o.nextFirst - 1}`
          return
        }
        await this.drop(o)
      }
      this.st.waiting = null
    } catch (err) {
      this.st.waiting = `retention failed, retried: ${describe(err)}`
      this.log(`retention: ${describe(err)}; nothing more is dropped until it works`)
    }
  }

  /** Folds the oldest segment's unacknowledged records into the dirty set,
   *  persists it, then deletes the segment. */
  private async drop (o: NonNullable<Journal['oldest']>): Promise<void> {
    const acked = this.journal.checkpoint.acked
    let records = 0
    let folded = 0
    for await (const { batch } of this.journal.read(o.first)) {
      if (batch.seq >= o.nextFirst) break
      batch.records.forEach((r, i) => {
        records++
        if (batch.seq + i > acked) { this.dirty.add(r); folded++ }
      })
    }
    // Damage in the segment (journal.read names it, and a full resync is
    // already asked for in the checkpoint) loses nothing more by the drop.
    await this.dirty.save() // before the segment goes: a crash between keeps both
    // Also before: a journal starting past its acknowledged point without
    // this is a segment lost, named at the next open (journal.ts noteHeadLost).
    await this.journal.setCheckpoint({ dropped: Math.max(this.journal.checkpoint.dropped ?? 0, o.nextFirst - 1) })
    await this.journal.dropOldest(o.first) // unless a trim took it meanwhile (acknowledged: nothing lost)
    const s = this.st
    s.droppedSegments++
    s.droppedRecords += records
    s.droppedBytes += o.bytes
    s.foldedRecords += folded
    s.droppedThroughSeq = o.nextFirst - 1
    s.lastDropAt = new Date(this.now()).toISOString()
    this.log(`retention (${s.retain}): dropped journal segment ${o.first}..${o.nextFirst - 1} (${records} records, ${o.bytes} bytes)` +
      (folded > 0 ? `; ${folded} of them not on any peer: a later peer gets a resync of the changes they made (${this.dirty.marks.size} paths tracked)` : ''))
  }
}
