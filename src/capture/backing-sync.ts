// The journal is the redo log (the native core's durability promise): an
// application's fsync waits for the journal's fdatasync only, and the
// backing files reach the disk here, in the background, about every
// second. Each time, the point they reached (the last sequence appended
// before the syncfs) is written down with the machine's boot id. After a
// power loss (another boot id) the records past that point are redone onto
// the backing store before the mount opens (apply/redo.ts); after a crash
// of the daemon alone the page cache survived, so nothing is redone.
//
// The journal keeps every record past the point (its trim floor), or the
// redo could not be done.
import type { Seq } from '../core/records.js'
import type { VolumeSpec } from '../core/config.js'
import { describe } from '../core/errors.js'
import { readBackingPoint, writeBackingPoint } from '../journal/backing-point.js'

// About once a second; REPLFS_BACKING_SYNC_MS sets another period (a longer
// one keeps more of the journal and makes a power loss's redo longer).
const intervalMs = Number(process.env.REPLFS_BACKING_SYNC_MS ?? 1000)

export class BackingSync {
  /** The backing store is durable through this sequence. */
  synced: Seq
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null

  /** `appended` runs with no mutation in flight and says the last sequence
   *  appended; `syncfs` makes the volumes' filesystems durable. */
  constructor (private readonly stateDir: string, private readonly specs: readonly VolumeSpec[],
    private readonly appended: () => Promise<Seq>, private readonly syncfs: (specs: readonly VolumeSpec[]) => Promise<void>,
    private readonly log: (l: string) => void, private readonly onSynced: () => Promise<void> = async () => {}) {
    this.synced = readBackingPoint(stateDir)?.seq ?? 0
  }

  start (): void {
    this.timer = setInterval(() => { void this.syncNow().catch(err => this.log(`backing sync: ${describe(err)}`)) }, intervalMs)
    this.timer.unref()
  }

  /** Syncs the backing store and records the point (one pass at a time). */
  syncNow (): Promise<void> {
    this.running ??= this.once().finally(() => { this.running = null })
    return this.running
  }

  async stop (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running?.catch(() => {})
    await this.syncNow()
  }

  private async once (): Promise<void> {
    const seq = await this.appended()
    if (seq <= this.synced) return
    await this.syncfs(this.specs)
    await writeBackingPoint(this.stateDir, seq)
    this.synced = seq
    await this.onSynced()
  }
}
