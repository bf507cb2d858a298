// The journal's size limit and what happens at it (DESIGN.md, Journal):
//   block: new operations wait until acknowledgements trim the journal
//          below the limit: the replica never falls further behind;
//   track: the journal's records are folded into the dirty set (paths,
//          metadata, byte ranges), its segments are dropped, and from then
//          on only the dirty set grows; the peer gets a resync of exactly
//          that when it is back.
import type { Journal } from '../journal/journal.js'
import type { CaptureApi } from '../capture/capture.js'
import { describe } from '../core/errors.js'

export type OverflowPolicy = 'block' | 'track'

export class Overflow {
  private blocked = false
  private switching = false
  private stopped = false
  private timer: NodeJS.Timeout
  private saveTimer: NodeJS.Timeout
  /** Told when tracking starts: batches were dropped, so a session streaming
   *  them must end (its resync follows on reconnect). */
  onTrack: () => void = () => {}

  constructor (private readonly journal: Journal, private readonly capture: CaptureApi, readonly policy: OverflowPolicy,
    readonly maxBytes: number, private readonly log: (l: string) => void,
    /** The peer's acknowledged sequence: newer than the checkpoint's, which is written every 200 ms. */
    private readonly acked: () => number = () => journal.checkpoint.acked) {
    capture.commit.listeners.push(() => this.check())
    this.timer = setInterval(() => this.check(), 250)
    this.timer.unref()
    // A failed save (the state directory full) is tried again at the next
    // tick; said once until one works.
    let saveFailing = false
    this.saveTimer = setInterval(() => {
      if (capture.mode !== 'track' || this.switching) return // enterTrack saves, and retries, itself
      capture.saveDirty().then(() => { saveFailing = false }, err => {
        if (!saveFailing) this.log(`dirty set not saved, retried each second: ${describe(err)}`)
        saveFailing = true
      })
    }, 1000)
    this.saveTimer.unref()
  }

  get full (): boolean { return this.journal.bytes >= this.maxBytes }

  /** Where something waits on the journal's size (writers at its limit
   *  under `block`, a resync paused at half of it), its acknowledged
   *  segments go now, not at the backing store's next sync (checks come
   *  with every commit: the journal runs one pass at a time). */
  private trimAcked (): void {
    this.journal.trimAcked().catch(err => this.log(`journal trim: ${describe(err)}`))
  }

  check (): void {
    if (this.policy === 'block') {
      if (this.maxBytes > 0 && this.full) this.trimAcked()
      this.capture.bound(this.maxBytes)
      if (this.full && !this.blocked) {
        this.blocked = true
        this.capture.setBlocked(true)
        this.log(`journal full (${this.journal.bytes} of ${this.maxBytes} bytes): new writes wait until the secondary catches up (--on-overflow block)`)
      } else if (!this.full && this.blocked) {
        this.blocked = false
        this.capture.setBlocked(false)
        this.log('journal below its limit again: writes resume')
      }
    } else if (this.full && this.capture.mode === 'journal' && !this.switching) {
      void this.trackUnlessTrimmed()
    }
  }

  /** Tracking, unless the limit was reached by segments a peer acknowledged
   *  and only the backing store's point still held (its sync 30 s apart, the
   *  journal grew to the limit meanwhile): those go first, and a pair that
   *  keeps up goes on streaming instead of resyncing. Writers wait for that
   *  trim (a backing sync), as under `block`: the journal stays at its limit. */
  private async trackUnlessTrimmed (): Promise<void> {
    this.switching = true
    this.capture.setBlocked(true)
    try {
      await this.checkpointLiveAck()
      await this.journal.trimAcked()
    } catch (err) {
      this.log(`journal trim: ${describe(err)}`)
    } finally {
      this.capture.setBlocked(false)
    }
    this.switching = false
    if (!this.stopped && this.full && this.capture.mode === 'journal') await this.enterTrack()
  }

  /** A resync journals at most half the limit ahead of the secondary, or
   *  into the one segment being written: no trim can take that one, and with
   *  a limit of two segments (the smallest, 1 MiB) it alone can hold half,
   *  which kept a resync paused for good. */
  resyncPause (): Promise<void> | null {
    const roomy = () => this.journal.bytes < this.maxBytes / 2 || this.journal.segmentCount <= 1
    if (roomy()) return null
    return new Promise(resolve => {
      const t = setInterval(() => {
        if (roomy()) { clearInterval(t); resolve() } else this.trimAcked()
      }, 50)
    })
  }

  private async enterTrack (): Promise<void> {
    this.switching = true
    this.capture.mode = 'track'
    this.log(`journal full (${this.journal.bytes} of ${this.maxBytes} bytes): dropping journalled data, tracking changed extents only (--on-overflow track)`)
    try {
      await this.foldJournal()
      await this.dropJournal()
    } catch (err) {
      // Not expected (the fold reads the journal, damage is named there and
      // asks for a full resync), or stopped meanwhile. The session ends as
      // it would have.
      if (!this.stopped) this.log(`journal full: switching to tracking failed: ${describe(err)}`)
    } finally {
      this.switching = false
    }
    this.onTrack()
  }

  /** The peer's live acknowledgement into the checkpoint (which lags it by
   *  up to 200 ms): what a trim and a fold count from. */
  private async checkpointLiveAck (): Promise<void> {
    const live = this.acked()
    if (live > this.journal.checkpoint.acked) await this.journal.ack(live, (await this.journal.hashAt(live)) ?? undefined)
  }

  /** Folds what the journal holds past the acknowledged point into the dirty set. */
  private async foldJournal (): Promise<void> {
    // An operation already past the mode check appends to the journal even
    // now: one pass through the group lock waits it out, then the journal
    // is followed to its end, so the fold below sees it (the rebase drops
    // every segment: a batch appended after the fold was lost, a silent
    // divergence the overflow test caught as 256 KiB missing).
    await this.capture.exclusive(() => {})
    await this.capture.commit.idle()
    // The fold starts at the live acknowledged sequence: the checkpoint's
    // lags, and what lies between is on the secondary already (folding it
    // made the resync send more than the tracked extents). That point goes
    // into the checkpoint first, so that the dirty set saved next, which
    // leaves out what lies below it, and the checkpoint agree on what the
    // segments held (journal.ts noteHeadLost). Not written (the state
    // directory failing): the fold starts at the checkpoint's old point.
    await this.checkpointLiveAck().catch(() => {})
    const acked = this.journal.checkpoint.acked
    for await (const { batch } of this.journal.read(acked + 1)) {
      batch.records.forEach((r, i) => { if (batch.seq + i > acked) this.capture.dirty.add(r) })
    }
  }

  /** The dirty set saved, then the journal's segments dropped. A save that
   *  fails (the state directory full) is tried again each second: the
   *  journal keeps everything meanwhile, and streams on. */
  private async dropJournal (): Promise<void> {
    for (let failing = false; ; failing = true) {
      try {
        await this.capture.saveDirty()
        break
      } catch (err) {
        if (this.stopped) throw err
        if (!failing) this.log(`journal full: the dirty set cannot be saved, retried each second: ${describe(err)}`)
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
    // Everything appended is folded: the segments may go, as retention's do
    // (a kill before the rebase leaves them, and one deleted meanwhile is no
    // loss to name). The rebase syncs the backing store before it drops them.
    await this.journal.setCheckpoint({ dropped: this.journal.nextSeq - 1 })
    await this.journal.rebase(this.journal.nextSeq, this.journal.lastHash)
  }

  /** A resync starts: operations are journalled again. */
  leaveTrack (wasTracking: boolean): void {
    if (this.capture.mode === 'track') this.capture.mode = 'journal'
    if (wasTracking) this.log('peer back: resyncing the tracked changes, journalling again')
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    clearInterval(this.saveTimer)
    if (this.blocked) this.capture.setBlocked(false)
    this.blocked = false
  }
}
