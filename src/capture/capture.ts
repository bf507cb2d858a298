// Capture: turning changes into journal records. The FUSE operations are
// captured by the native core (src/native/capture.c: the backing op, its
// sequence and its journal append in one critical section, so the journal
// order is the backing order); native-capture.ts follows that journal. This
// file holds what both sides share, and the JS capture a primary's recovery
// journals its restates through before the core takes the journal over.
import type { Record, Seq } from '../core/records.js'
import type { CommitApi, GroupCommit } from '../journal/group-commit.js'
import type { Journal } from '../journal/journal.js'
import type { ActivityLog, HotMark } from './activity-log.js'
import { ExtentMap } from './extent-map.js'
import type { DirtySet } from './dirty-set.js'

export interface CaptureStats {
  records: number
  dataBytes: number
  byKind: Map<string, number>
}

/** Where records go: the journal, or (after an overflow with the `track`
 *  policy) only the dirty set, for a resync later. */
export type CaptureMode = 'journal' | 'track'

/** What the replicator and resync drive: the native core's capture
 *  (native-capture.ts), where the FUSE operations are sequenced. */
export interface CaptureApi {
  readonly commit: CommitApi
  readonly extents: ExtentMap
  readonly stats: CaptureStats
  readonly dirty: DirtySet
  readonly observers: Set<(r: Record) => void>
  mode: CaptureMode
  /** sync mode fell back to async (the core decides, on its timeout) */
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
  /** The secondary's journal holds through `seq`, on its disk through
   *  `flushed`; `newest()` tells the newest sequence (asked only while sync
   *  mode resumes: it polls the core). */
  peerAcked (seq: Seq, flushed: Seq, newest: () => Seq): void
  /** Stopping: nothing may wait for the secondary any more. */
  releaseWaiters (): void
}

/** Records JS makes before the native core opens the journal: the restates
 *  of a primary's recovery (cli/primary.ts), through the JS group commit. */
export class Capture {
  readonly extents = new ExtentMap()
  readonly stats: CaptureStats = { records: 0, dataBytes: 0, byKind: new Map() }
  mode: CaptureMode = 'journal'
  private trackedMarks: HotMark[] = []

  constructor (readonly journal: Journal, readonly commit: GroupCommit, readonly activity: ActivityLog, readonly dirty: DirtySet) {}

  /** Sequences `r` now; `reply` runs once it is in the journal file. */
  record (r: Record, marks: HotMark[], reply: () => void): Seq {
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
      reply()
    })
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
