// Capture: turns a completed backing-store operation into a journal record.
// The order of the journal is fixed here, at one defined point: the moment
// `record` is called, right after the backing op succeeded and before the
// FUSE reply. Ops that must not be reordered against each other hold a
// range lock (range-lock.ts) across backing op + `record`; libfuse's own
// path locks keep renames from racing ops on the same paths.
import type { Record, Seq } from '../core/records.js'
import type { GroupCommit } from '../journal/group-commit.js'
import type { Journal } from '../journal/journal.js'
import { ActivityLog, regionsOf, type HotMark } from './activity-log.js'
import { ExtentMap } from './extent-map.js'
import { RangeLocks } from './range-lock.js'

export interface CaptureStats {
  records: number
  dataBytes: number
  byKind: Map<string, number>
}

/** Waits the FUSE reply on, for one record: local journal write (async
 *  mode); a later issue adds the secondary's ack (sync mode). */
export type Durability = (seq: Seq, written: Promise<void>) => Promise<void>

export class Capture {
  readonly locks = new RangeLocks()
  readonly extents = new ExtentMap()
  readonly stats: CaptureStats = { records: 0, dataBytes: 0, byKind: new Map() }
  durability: Durability = (_seq, written) => written

  constructor (readonly journal: Journal, readonly commit: GroupCommit, readonly activity: ActivityLog) {}

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

  /** Before the backing op: persist the marks (null when already hot). */
  begin (marks: HotMark[]): Promise<void> | null {
    return this.activity.mark(marks)
  }

  /** The backing op failed: nothing is recorded. */
  abort (marks: HotMark[]): void {
    this.activity.release(marks)
  }

  /** The backing op succeeded: sequence it now; resolves when the record is
   *  as durable as the mode promises, and releases the marks then. */
  record (r: Record, marks: HotMark[]): Promise<void> {
    const { seq, written } = this.commit.submit(r)
    this.track(r, seq)
    return this.durability(seq, written).finally(() => this.activity.release(marks))
  }

  /** fsync barrier: journal (and activity log) on disk. */
  async barrier (): Promise<void> {
    await this.commit.barrier()
    await this.activity.sync()
  }

  private track (r: Record, seq: Seq): void {
    const s = this.stats
    s.records++
    s.byKind.set(r.kind, (s.byKind.get(r.kind) ?? 0) + 1)
    switch (r.kind) {
      case 'write':
        s.dataBytes += r.data.length
        this.extents.add(r.vol, r.path, r.off, r.off + r.data.length, seq)
        break
      case 'truncate': this.extents.clip(r.vol, r.path, r.size); break
      case 'unlink': this.extents.drop(r.vol, r.path); break
      case 'rename': this.extents.rename(r.vol, r.path, r.to); break
      default: break
    }
  }
}
