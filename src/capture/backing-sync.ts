// The journal is the redo log (the native core's durability promise): an
// application's fsync waits for the journal's fdatasync only, and the
// backing files reach the disk here, in the background. Each time, the
// point they reached (the last sequence appended before the syncfs) is
// written down with the machine's boot id. After a power loss (another boot
// id) the records past that point are redone onto the backing store before
// the mount opens (apply/redo.ts); after a crash of the daemon alone the page
// cache survived, so nothing is redone.
//
// The journal keeps every record past the point (its trim floor), or the
// redo could not be done.
//
// How often: every 30 s, the kernel's own expiry of dirty data, so a backing
// file is on disk no later than a plain file's data would be; and sooner once
// the journal has grown by `boundBytes` since the last point, which bounds
// the redo after a power loss and the journal held for it, or by as much as
// its filesystem has left: the journal held for a redo never fills the state
// directory (nor keeps a full one full once acknowledgements would trim it).
// A sync every second made the disk take the backing files' writeback while
// the application was still writing: a 1 GiB sequential write ran at
// 0.6-0.75x of the same write with the sync 30 s away
// (native-notes/performance.md 28).
import fs from 'node:fs'
import type { Seq } from '../core/records.js'
import type { VolumeSpec } from '../core/config.js'
import { describe } from '../core/errors.js'
import { readBackingPoint, writeBackingPoint, writeBackingPointSync } from '../journal/backing-point.js'

// REPLFS_BACKING_SYNC_MS sets another period, REPLFS_BACKING_SYNC_BYTES
// another growth (larger ones keep more of the journal and make a power
// loss's redo longer).
const periodMs = positive(process.env.REPLFS_BACKING_SYNC_MS) ?? 30_000
const boundOverride = positive(process.env.REPLFS_BACKING_SYNC_BYTES) ?? 0
/** How often the journal's growth is looked at. */
const checkMs = Math.min(periodMs, 250)

export interface BackingSyncOptions {
  /** The volumes' filesystems made durable. */
  syncfs: (specs: readonly VolumeSpec[]) => Promise<void>
  /** Runs with no mutation in flight and says the last sequence appended. */
  appended: () => Promise<Seq>
  /** Bytes the journal has been written since the mount opened (the core's counter, as last polled). */
  journalWritten: () => number
  /** A sync runs once the journal grew this much since the last point. */
  boundBytes: number
  log: (l: string) => void
  /** After each point written (the journal's trim). */
  onSynced?: () => Promise<void>
  /** The point's write failed (ENOSPC: the state directory full) and
   *  `write` (synchronous) is to be tried once more with room made for it
   *  (the journal's reserve: Journal.writeWithReserve); throws if it cannot. */
  writeFull?: (err: unknown, write: () => void) => Promise<void>
}

export class BackingSync {
  /** The backing store is durable through this sequence. */
  synced: Seq
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  /** A pass is wanted even if nothing was appended since the last (syncAllSoon). */
  private allWanted = false
  private stopped = false
  private lastStart = Date.now()
  private writtenAtLast: number
  private readonly boundBytes: number

  constructor (private readonly stateDir: string, private readonly specs: readonly VolumeSpec[], private readonly o: BackingSyncOptions) {
    this.synced = readBackingPoint(stateDir)?.seq ?? 0
    this.writtenAtLast = o.journalWritten()
    this.boundBytes = boundOverride || o.boundBytes
  }

  start (): void {
    this.timer = setInterval(() => {
      if (!this.due()) return
      void this.syncNow().catch(err => this.o.log(`backing sync: ${describe(err)}`))
    }, checkMs)
    this.timer.unref()
  }

  /** Syncs the backing store and records the point (one pass at a time). */
  syncNow (): Promise<void> {
    this.running ??= this.once().finally(() => { this.running = null })
    return this.running
  }

  /** A pass whether or not anything was appended since the last: what the
   *  capture tracked while its journal had overflowed reached the backing
   *  files only, and no record of the journal holds it. In the background,
   *  tried again each second until one goes through (then `done`) or the
   *  sync stops. */
  syncAllSoon (done: () => void): void {
    this.allWanted = true
    const pass = async (): Promise<void> => {
      while (this.allWanted && !this.stopped) await this.syncNow()
    }
    const attempt = (): void => {
      pass().then(() => { if (!this.stopped) done() }, err => {
        this.o.log(`backing sync after tracking: ${describe(err)}; tried again in a second`)
        this.allWanted = true
        setTimeout(attempt, 1000).unref()
      })
    }
    attempt()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running?.catch(() => {})
    await this.syncNow()
  }

  private due (): boolean {
    if (Date.now() - this.lastStart >= periodMs) return true
    const written = this.o.journalWritten()
    if (written < this.writtenAtLast) this.writtenAtLast = written // a counter started again
    const grown = written - this.writtenAtLast
    return grown > 0 && (grown >= this.boundBytes || grown >= this.room())
  }

  /** Bytes free for the journal in the state directory's filesystem (root's
   *  reserved blocks included when root writes it). */
  private room (): number {
    try {
      const st = fs.statfsSync(this.stateDir)
      return (process.getuid?.() === 0 ? st.bfree : st.bavail) * st.bsize
    } catch {
      return Infinity // the sync's own write of the point will say what is wrong
    }
  }

  private async once (): Promise<void> {
    const all = this.allWanted
    this.allWanted = false
    this.lastStart = Date.now()
    this.writtenAtLast = this.o.journalWritten()
    const seq = await this.o.appended()
    if (seq <= this.synced && !all) return
    await this.o.syncfs(this.specs)
    try {
      await writeBackingPoint(this.stateDir, seq)
    } catch (err) {
      // A full state directory: its temporary file needs a block. Without
      // the point nothing the floor holds is ever let go, and a journal
      // that filled the directory keeps it full.
      if (!this.o.writeFull) throw err
      await this.o.writeFull(err, () => {
        writeBackingPointSync(this.stateDir, seq)
        this.synced = Math.max(this.synced, seq) // for the trim that follows it there
      })
    }
    this.synced = Math.max(this.synced, seq)
    await this.o.onSynced?.()
  }
}

/** A positive number from the environment, or undefined. */
function positive (v: string | undefined): number | undefined {
  const n = Number(v)
  return v !== undefined && Number.isFinite(n) && n > 0 ? n : undefined
}
