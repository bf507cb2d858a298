// Capture when the native core serves the mount: the core sequences and
// journals every FUSE operation on its own threads; this side follows the
// journal (tail.ts) for the extent map, the sender and resync's observers
// (with a peer; without one it only takes the core's position),
// and journals what JS itself produces (restates of a resync) under the
// core's group lock, so that a restate's read of the backing store and its
// record stay one step in the journal's order.
//
// Runs on the JS thread only. The core wakes it (coalesced) through
// `wake`; nothing here is on the path of a FUSE reply.
import type { Record, Seq } from '../core/records.js'
import { recordBytes } from '../core/records.js'
import { batchBytesTarget, batchRecordsMax } from '../core/limits.js'
import { describe } from '../core/errors.js'
import { decodeValue, encodeValue, recordsToWire, validateRecord } from '../journal/codec.js'
import type { Appended, Journal } from '../journal/journal.js'
import { JournalTail, PositionFollower, type Follower } from '../journal/tail.js'
import type { CaptureHandle, CaptureStatus, NativeCore } from '../native/addon.js'
import type { ExtentMap } from './extent-map.js'
import type { CaptureApi, CaptureMode, CaptureStats } from './capture.js'
import type { DirtySet } from './dirty-set.js'
import type { HotMark } from './activity-log.js'
import { SyncResume } from './sync-resume.js'

/** How long an async-mode wake-up waits before following the journal: with
 *  a peer, part of the replica's lag; without one nothing waits for it (a
 *  poll and the core's position: native-notes/performance.md 15). */
const followDelayMs = { peer: 2, alone: 50 }

export class NativeCapture implements CaptureApi {
  readonly stats: CaptureStats = { records: 0, dataBytes: 0, byKind: new Map() }
  readonly observers = new Set<(r: Record) => void>()
  readonly commit: NativeCommit
  /** sync mode fell back to async after a timeout, until the peer catches up */
  syncFellBack = false
  /** Reads the batches back: only with a peer (null: none, the follower takes the core's position). */
  private readonly tail: JournalTail | null
  private readonly follower: Follower
  private pending: Record[] = []
  private inExclusive = false
  private readonly ownRanges: Array<[Seq, Seq]> = [] // sequences JS appended: not an application's
  private fallbacksSeen = 0
  private appendErrors = 0 // append errors met: a restate clears the error only if none came since it began
  private trackTokens: number[] = []
  private restateTimer: NodeJS.Timeout | null = null
  private followTimer: NodeJS.Timeout | null = null
  /** Re-journals what the activity log marks hot (set by the wiring). */
  restateHot: () => Promise<number> = async () => 0
  private status: CaptureStatus
  private readonly resume: SyncResume
  private readonly followDelayMs: number

  constructor (private readonly core: NativeCore, readonly handle: CaptureHandle, readonly journal: Journal,
    readonly dirty: DirtySet, readonly extents: ExtentMap, private readonly log: (l: string) => void, private readonly syncMode: boolean,
    syncTimeoutMs: number, peer = true) {
    this.resume = new SyncResume(syncTimeoutMs)
    this.followDelayMs = peer ? followDelayMs.peer : followDelayMs.alone
    this.status = core.poll(handle)
    // The follower reads the status of the last poll: every poll re-arms the
    // core's wake-up, so an append after it wakes us again (one poll per
    // wake-up, not one per read: a poll builds a whole status object).
    // Without a peer no sender or resync needs the batches: the counters
    // come from the core, and the extent map is not kept (status says none).
    const tail = this.tail = peer ? new JournalTail(journal, () => this.status, err => this.log(describe(err))) : null
    tail?.listeners.push((a, batch) => this.follow(a, batch.records))
    this.follower = tail ?? new PositionFollower(journal, () => this.status)
    this.commit = new NativeCommit(tail, () => this.barrier(), () => this.refresh().nextSeq - 1)
    journal.handOver({
      rebase: (seq, prev) => this.exclusive(() => core.rebase(handle, seq, prev)).then(() => this.follower.restart(seq)),
      exclusive: fn => this.exclusive(fn)
    })
  }

  /** The core's coalesced wake-up (JS thread, through the thread-safe function).
   *  In async mode the follow waits a moment first, so that one poll and one
   *  read carry many batches: woken per batch, this thread spent ~30 us per
   *  4 KiB write (a poll, a read racing the appender for the file, a wake of
   *  an idle thread) on a 2-core machine where the FUSE thread needs the
   *  other core. Sync-mode writers wait for the secondary, so they go now. */
  wake (): void {
    if (this.followTimer) return
    if (this.syncMode && !this.syncFellBack) return this.followNow()
    this.followTimer = setTimeout(() => { this.followTimer = null; this.followNow() }, this.followDelayMs)
  }

  private followNow (): void {
    this.refresh()
    this.follower.wake()
  }

  /** Asks the core where it stands (this re-arms its wake-up). */
  private refresh (): CaptureStatus {
    this.status = this.core.poll(this.handle)
    if (this.status.syncFallbacks > this.fallbacksSeen) {
      this.fallbacksSeen = this.status.syncFallbacks
      this.syncFellBack = true
      this.resume.reset()
      this.core.setSyncWindow(this.handle, 0)
      this.log(this.status.track
        ? 'sync mode: changes are tracked outside the journal (it overflowed, or a restart found a saved dirty set); falling back to async until a resync brings the secondary up to date (the waiting writes are released)'
        : 'sync mode: no acknowledgement from the secondary in time; falling back to async until it catches up (the waiting writes are released)')
    }
    if (this.status.error) {
      // The core reports an error once; the FUSE op that met it got its errno.
      this.log(`journal: ${this.status.error}`)
      this.commit.appendError = { message: this.status.error, since: new Date().toISOString() }
      this.appendErrors++
      this.scheduleRestate()
      this.makeRoom()
    }
    if (this.status.trackedRecords > 0 || this.status.track) this.takeTracked()
    if (!this.tail) {
      this.stats.records = this.status.records
      this.stats.dataBytes = this.status.dataBytes
    }
    return this.status
  }

  /** Bytes the core has written to the journal since it opened, as of the last poll. */
  get journalWritten (): number { return this.status.journalBytesWritten }

  get mode (): CaptureMode { return this.status.track ? 'track' : 'journal' }
  set mode (m: CaptureMode) {
    this.core.setFlag(this.handle, 'track', m === 'track')
    this.refresh()
  }

  /** A backing sync that started after tracking ended is done: what was
   *  tracked is on disk, and fsyncs wait for the journal alone again (the
   *  core sends them to the backing files too from the switch to tracking
   *  on, ops_file.c do_fsync). Nothing while it tracks again. */
  trackedOnDisk (): void {
    this.core.setFlag(this.handle, 'fsyncBacking', false)
  }

  setBlocked (on: boolean): void {
    this.core.setFlag(this.handle, 'gate', on)
  }

  /** The journal may hold `maxBytes`: the core stops mutations at that size
   *  itself (JS follows too late to be the brake). What the journal holds
   *  now is what we followed plus what the core wrote since, so the core may
   *  write until its counter reaches followed + (max - held as followed). */
  bound (maxBytes: number): void {
    if (!this.tail) return // the bound is the sender's overflow policy: only with a peer
    this.core.setCredit(this.handle, Math.max(1, this.tail.followedBytes + maxBytes - this.journal.bytes))
  }

  /** The secondary's journal holds through `seq`, on its disk through
   *  `flushed`: waiting writes (and fsyncs) go. Fallen back, sync resumes,
   *  at once or through a shrinking window that holds writers to the
   *  secondary's pace (sync-resume.ts); it counts as fallen back until the
   *  window is 0. */
  peerAcked (seq: Seq, flushed: Seq, newest: () => Seq): void {
    this.core.ack(this.handle, seq, flushed)
    if (!this.syncFellBack || !this.syncMode || this.status.track) return // tracking: nothing to wait for until a resync
    const last = newest()
    const now = performance.now()
    if (this.resume.resuming) {
      const window = this.resume.windowAt(now)
      this.core.setSyncWindow(this.handle, window)
      if (window === 0) this.resumed('the backlog drained')
      return
    }
    const window = this.resume.resumeWindow(seq, last, now)
    if (window === null) return
    this.core.setSyncWindow(this.handle, window)
    this.core.setFlag(this.handle, 'sync', true)
    if (window === 0) this.resumed(seq >= last ? 'the secondary has caught up' : `the secondary is ${last - seq} records behind, which it drains within a quarter of the sync timeout`)
    else this.log(`sync mode resuming: the secondary is ${last - seq} records behind; writers wait until it is within ${window} records of them, a window that shrinks at half its pace`)
  }

  private resumed (why: string): void {
    this.syncFellBack = false
    this.log(`sync mode resumed: ${why}`)
  }

  /** Lets every waiting writer go (stopping). */
  releaseWaiters (): void {
    this.core.setFlag(this.handle, 'sync', false)
  }

  /** A record made by JS (a restate); only inside `exclusive`. */
  record (r: Record, _marks: HotMark[], reply: () => void): Seq {
    if (!this.inExclusive) throw new Error('NativeCapture.record outside exclusive()')
    this.pending.push(r)
    reply()
    return 0
  }

  /** Runs `fn` holding the core's group lock; the records it made are
   *  journalled before the lock is let go (FUSE operations wait meanwhile). */
  async exclusive<T> (fn: () => T): Promise<T> {
    await this.core.lock(this.handle)
    this.inExclusive = true
    try {
      const v = fn()
      this.flushPending()
      return v
    } finally {
      this.inExclusive = false
      this.pending = []
      this.core.unlock(this.handle)
      this.wake()
    }
  }

  /** Resolves once everything the core had appended when called is followed. */
  async barrier (): Promise<void> {
    this.refresh()
    await this.follower.caughtUp()
  }

  /** Persists the dirty set, then lets go of the marks it now covers. */
  async saveDirty (): Promise<void> {
    const tokens = this.trackTokens
    this.trackTokens = []
    await this.dirty.save()
    for (const t of tokens) this.core.releaseTracked(this.handle, t)
  }

  close (): void {
    if (this.restateTimer) clearTimeout(this.restateTimer)
    if (this.followTimer) clearTimeout(this.followTimer)
    this.follower.close()
  }

  /** Recovery could not re-journal what an unclean stop left hot (owed.ts):
   *  status names it until `restateHot` (which takes the owed parts too)
   *  went through. */
  owe (message: string): void {
    this.core.setFlag(this.handle, 'owed', true) // changes are refused until the restate: see scheduleRestate
    this.commit.appendError = { message, since: new Date().toISOString() }
    this.appendErrors++
    this.scheduleRestate()
  }

  /** A journal append failed after its backing op had happened (a full or
   *  failing state directory): the core kept that op's parts hot. Until they
   *  are re-journalled the copy would silently lack them, so once appends go
   *  through again, everything the activity log marks is restated. The core
   *  refuses changes meanwhile (capture.c owe_restate): one journalled
   *  before the restate could build on what the copy lacks (an open with
   *  O_TRUNC of the file whose create was lost: a truncate the secondary
   *  refuses, and a full resync). */
  private scheduleRestate (): void {
    if (this.restateTimer) return
    this.restateTimer = setTimeout(() => {
      this.restateTimer = null
      const errorsBefore = this.appendErrors
      this.restateHot().then(n => {
        this.log(`journal: appends work again; the parts a failed append left hot are re-journalled (${n} records)`)
        // The error stays in status until then: before, the backing store held changes the
        // journal (and so the copy) did not, even if other appends went through meanwhile.
        if (this.appendErrors === errorsBefore) {
          this.commit.appendError = null
          // No change can have failed its append since: the core refused them all.
          this.core.setFlag(this.handle, 'owed', false)
        }
      }, err => {
        this.log(`journal: still failing (${describe(err)}); retrying`)
        this.scheduleRestate()
        this.makeRoom()
      })
    }, 1000)
    this.restateTimer.unref()
  }

  /** An append failed (the state directory full, say): acknowledged segments
   *  that only the backing point holds go now, after a backing sync, not at
   *  the next one in the background. */
  private makeRoom (): void {
    this.journal.trimAcked().catch(err => this.log(`journal trim: ${describe(err)}`))
  }

  private flushPending (): void {
    let start = 0
    while (start < this.pending.length) {
      let end = start
      let bytes = 0
      while (end < this.pending.length && end - start < batchRecordsMax && (bytes < batchBytesTarget || end === start)) {
        bytes += recordBytes(this.pending[end++])
      }
      const part = this.pending.slice(start, end)
      const last = this.core.appendEncoded(this.handle, encodeValue(recordsToWire(part)), part.length)
      if (this.tail) this.ownRanges.push([last - part.length + 1, last]) // follow() lets them go
      start = end
    }
  }

  /** Records in tracked mode: into the dirty set (the core keeps their
   *  activity marks until it is saved). */
  private takeTracked (): void {
    for (;;) {
      const t = this.core.takeTracked(this.handle)
      if (!t) return
      const recs = decodeValue(t.records)
      if (Array.isArray(recs)) {
        for (const v of recs) {
          const r = validateRecord(v)
          this.dirty.add(r)
          this.notice(r)
        }
      }
      this.trackTokens.push(t.token)
    }
  }

  private follow (a: Appended, records: Record[]): void {
    while (this.ownRanges.length > 0 && this.ownRanges[0][1] < a.seq) this.ownRanges.shift()
    const own = this.ownRanges.length > 0 && this.ownRanges[0][0] <= a.seq
    records.forEach((r, i) => {
      this.extents.note(r, a.seq + i)
      const s = this.stats
      s.records++
      s.byKind.set(r.kind, (s.byKind.get(r.kind) ?? 0) + 1)
      if (r.kind === 'write') s.dataBytes += r.data.length
      if (!own) this.notice(r)
    })
  }

  private notice (r: Record): void {
    for (const o of this.observers) o(r)
  }
}

/** The group-commit face of the core for the sender and the overflow
 *  policy: batches as they are followed, in order. */
export class NativeCommit {
  readonly listeners: Array<(a: Appended) => void> = []
  /** The last journal append that failed in the core, until what it left out is re-journalled. */
  appendError: { message: string, since: string } | null = null

  /** `tail` null: nothing is followed batch by batch (no peer), and no listener is called. */
  constructor (tail: JournalTail | null, private readonly caughtUp: () => Promise<void>, private readonly last: () => Seq) {
    tail?.listeners.push(a => { for (const l of this.listeners) l(a) })
  }

  /** Sequence of the last record the core appended. */
  get lastAssigned (): Seq { return this.last() }

  /** Everything appended so far has been followed. */
  idle (): Promise<void> { return this.caughtUp() }

  async close (): Promise<void> { await this.caughtUp() }
}
