// Capture: turns a completed backing-store operation into a journal record.
// The order of the journal is fixed here, at one defined point: the moment
// `record` is called, right after the backing op succeeded and before the
// FUSE reply. fs/ops.ts does the backing op synchronously and records in
// the same step, so the journal order is the backing store's order even
// with many kernel threads in flight (native-notes/threading.md).
import type { Record, Seq } from '../core/records.js'
import type { CommitApi, GroupCommit } from '../journal/group-commit.js'
import type { Journal } from '../journal/journal.js'
import { ActivityLog, regionsOf, type HotMark } from './activity-log.js'
import { ExtentMap } from './extent-map.js'
import type { DirtySet } from './dirty-set.js'

export interface CaptureStats {
  records: number
  dataBytes: number
  byKind: Map<string, number>
}

/** When may the FUSE reply go? Called once the record is in the local
 *  journal file; async mode replies at once, sync mode (replicate/) when the
 *  secondary acknowledged `seq`. */
export type Durability = (seq: Seq, reply: () => void) => void

/** Where records go: the journal, or (after an overflow with the `track`
 *  policy) only the dirty set, for a resync later. */
export type CaptureMode = 'journal' | 'track'

/** What the replicator, resync and the primary's wiring use of a capture:
 *  this JS one (records sequenced on the event loop) or the native core's
 *  (native-capture.ts). */
export interface CaptureApi {
  readonly commit: CommitApi
  readonly extents: ExtentMap
  readonly stats: CaptureStats
  readonly dirty: DirtySet
  readonly observers: Set<(r: Record) => void>
  mode: CaptureMode
  syncBatches: boolean
  durability: Durability
  /** sync mode fell back to async (native: decided by the core) */
  readonly syncFellBack: boolean
  /** A record made by JS (recovery, resync); in `exclusive` for the native core. */
  record (r: Record, marks: HotMark[], reply: () => void): Seq
  /** Runs `fn` with no FUSE mutation in between (a restate step). */
  exclusive<T> (fn: () => T): Promise<T>
  /** Everything recorded so far is in the journal (and, here, on disk). */
  barrier (): Promise<void>
  saveDirty (): Promise<void>
  /** Overflow `block`: new mutations wait while on. */
  setBlocked (on: boolean): void
  /** Overflow `block`: the journal's size limit, enforced where mutations are sequenced. */
  bound (maxBytes: number): void
  /** The secondary acknowledged `seq`; `last` is the newest sequence. */
  peerAcked (seq: Seq, last: Seq): void
  /** Stopping: nothing may wait for the secondary any more. */
  releaseWaiters (): void
}

export class Capture implements CaptureApi {
  readonly extents = new ExtentMap()
  readonly stats: CaptureStats = { records: 0, dataBytes: 0, byKind: new Map() }
  durability: Durability = (_seq, reply) => reply()
  mode: CaptureMode = 'journal'
  /** Sync mode: batches are flagged so the secondary syncs before its ack. */
  syncBatches = false
  readonly syncFellBack = false // the replicator's SyncWaiters decide it here
  private blocked: Array<() => void> | null = null // waiting ops while the overflow gate is shut
  /** Observers of every record (resync watches the paths ops touch). */
  readonly observers = new Set<(r: Record) => void>()
  private trackedMarks: HotMark[] = []

  constructor (readonly journal: Journal, readonly commit: GroupCommit, readonly activity: ActivityLog, readonly dirty: DirtySet) {}

  /** Runs `op` now, or once the gate opens. */
  admit (op: () => void): void {
    if (this.blocked) this.blocked.push(op)
    else op()
  }

  setBlocked (on: boolean): void {
    if (on) { this.blocked ??= []; return }
    const waiting = this.blocked ?? []
    this.blocked = null
    for (const op of waiting) op()
  }

  /** One synchronous step of the event loop: no FUSE op can come between. */
  async exclusive<T> (fn: () => T): Promise<T> {
    return fn()
  }

  // Here `setBlocked` is exact already: ops are sequenced on this event loop.
  bound (_maxBytes: number): void {}

  peerAcked (_seq: Seq, _last: Seq): void {}
  releaseWaiters (): void {}

  /** Hot marks for an op on a path's namespace entry or metadata. */
  static pathMarks (vol: number, ...paths: string[]): HotMark[] {
    return paths.map(path => ({ vol, path, kind: 'path' as const, region: -1 }))
  }

  static metaMarks (vol: number, path: string): HotMark[] {
    return [{ vol, path, kind: 'meta', region: -1 }]
  }

  static regionMarks (vol: number, path: string, off: number, len: number): HotMark[] {
    return regionsOf(off, len).map(region => ({ vol, path, kind: 'region' as const, region }))
  }

  /** Before the backing op: the parts it touches are marked hot. */
  begin (marks: HotMark[]): void {
    this.activity.mark(marks)
  }

  /** The backing op failed: nothing is recorded. */
  abort (marks: HotMark[]): void {
    this.activity.release(marks)
  }

  /** The backing op succeeded: sequence it now (the caller did the backing
   *  op in the same synchronous step, so no other op can come between);
   *  `reply` runs once the record is as durable as the mode promises. */
  record (r: Record, marks: HotMark[], reply: () => void): Seq {
    for (const o of this.observers) o(r)
    if (this.mode === 'track') {
      // Not journalled: the dirty set keeps what changed. The hot marks stay
      // until the set is saved, so a crash before that still restates it.
      this.dirty.add(r)
      this.trackedMarks.push(...marks)
      this.stats.records++
      reply()
      return 0
    }
    const seq = this.commit.submitCb(r, () => {
      this.activity.release(marks)
      this.durability(seq, reply)
    }, this.syncBatches)
    this.track(r, seq)
    return seq
  }

  /** Persists the dirty set, then lets go of the marks it now covers. */
  async saveDirty (): Promise<void> {
    const marks = this.trackedMarks
    this.trackedMarks = []
    await this.dirty.save()
    this.activity.release(marks)
  }

  /** fsync barrier: the journal on disk. (Not the activity log: it guards
   *  against a crash of this process, which the page cache survives; once
   *  the journal is on disk the marks of what it holds are moot.) */
  async barrier (): Promise<void> {
    await this.commit.barrier()
  }

  private track (r: Record, seq: Seq): void {
    const s = this.stats
    s.records++
    s.byKind.set(r.kind, (s.byKind.get(r.kind) ?? 0) + 1)
    if (r.kind === 'write') s.dataBytes += r.data.length
    this.extents.note(r, seq)
  }
}
