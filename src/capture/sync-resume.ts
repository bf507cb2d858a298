// How a sync mode that fell back to async comes back. Waiting until the
// secondary had acknowledged everything appended never came while the
// application went on writing faster than the secondary applies
// (RELIABILITY.md: the lag grew from 2,685 to 4,452 records in 3 s, and sync
// had not resumed 30 s later). So sync resumes at once when the backlog
// drains within a quarter of the sync timeout at the pace the secondary has
// been acknowledging; otherwise with a window: a writer waits until the
// secondary is within `window` records of it, which holds the application to
// the secondary's pace, and the window shrinks at half that pace (the
// application gets the other half) until it is 0: sync proper. VVR's
// latency protection holds writers between marks the operator sets; here
// they are measured. Pure: the clock is passed in.
import type { Seq } from '../core/records.js'

/** Rate samples at most this often (a burst of acks is one sample). */
const sampleMs = 250

export class SyncResume {
  private sampleAt: number | null = null
  private sampleSeq: Seq = 0
  private rate = 0 // records acknowledged per ms, smoothed
  private draining: { window: number, at: number, rate: number } | null = null

  constructor (private readonly syncTimeoutMs: number) {}

  /** Resumed with a window that is not yet 0. */
  get resuming (): boolean { return this.draining !== null }

  /** The backlog that drains within a quarter of the timeout, in records. */
  get mark (): number { return Math.floor(this.rate * this.syncTimeoutMs / 4) }

  /** Fallen back, the secondary acknowledged `seq` with `last` appended, at
   *  `now` (ms): the window to resume with (0: sync proper), or null while
   *  its pace is not known yet. */
  resumeWindow (seq: Seq, last: Seq, now: number): number | null {
    this.sample(seq, now)
    const backlog = last - seq
    if (backlog <= 0) return 0
    if (this.rate === 0) return null
    const window = Math.max(0, backlog - this.mark)
    if (window > 0) this.draining = { window, at: now, rate: this.rate }
    return window
  }

  /** Resuming: the window at `now`, shrinking at half the secondary's pace
   *  measured when it began. 0 ends it. */
  windowAt (now: number): number {
    if (!this.draining) return 0
    const d = this.draining
    const window = Math.max(0, Math.floor(d.window - d.rate * (now - d.at) / 2))
    if (window === 0) this.draining = null
    return window
  }

  /** Sync fell back (again): measure afresh. */
  reset (): void {
    this.sampleAt = null
    this.rate = 0
    this.draining = null
  }

  private sample (seq: Seq, now: number): void {
    if (this.sampleAt === null) {
      this.sampleAt = now
      this.sampleSeq = seq
    } else if (now - this.sampleAt >= sampleMs) {
      const r = Math.max(0, seq - this.sampleSeq) / (now - this.sampleAt)
      this.rate = this.rate === 0 ? r : (this.rate + r) / 2
      this.sampleAt = now
      this.sampleSeq = seq
    }
  }
}
