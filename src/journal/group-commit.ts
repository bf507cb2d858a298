// Group commit: records arrive one by one from concurrent FUSE ops; each gets
// the group's next sequence number at once (so order is fixed at the moment
// the backing operation completed), and is appended to the journal in a
// batch with its neighbours.
//
// When does a batch close? When no append is in flight, at once: a lone
// writer pays one journal write and no timer. While an append is in flight,
// records accumulate and go out together when it finishes (the "window" is
// the previous append's duration), or earlier once they reach the size
// target. A barrier (fsync) closes the batch and waits for it on disk.
import type { Record, Seq } from '../core/records.js'
import { recordBytes } from '../core/records.js'
import { batchBytesTarget, batchRecordsMax } from '../core/limits.js'
import type { Appended, Journal } from './journal.js'

interface Pending {
  records: Record[]
  bytes: number
  sync: boolean
  waiters: Array<{ resolve: () => void, reject: (e: Error) => void }>
}

export interface GroupCommitOptions {
  /** called after each batch reached the journal file, in sequence order */
  onAppended?: (a: Appended) => void
  /** called when an append fails; the batch is retried, writers keep waiting */
  onError?: (err: Error) => void
  retryMs?: number
}

export class GroupCommit {
  private open: Pending = fresh()
  private readonly full: Pending[] = [] // closed batches waiting for the writer
  private writing = false
  private assigned: Seq // next sequence to hand out
  private closed = false
  private idleWaiters: Array<() => void> = []

  constructor (private readonly journal: Journal, private readonly opts: GroupCommitOptions = {}) {
    this.assigned = journal.nextSeq
  }

  /** Sequence of the last record handed out (appended or not). */
  get lastAssigned (): Seq { return this.assigned - 1 }

  /** Records waiting for their batch to be written. */
  get queuedRecords (): number {
    return this.open.records.length + this.full.reduce((n, p) => n + p.records.length, 0)
  }

  /** Gives `r` its sequence number now; the promise settles once the batch
   *  holding it is in the journal file (not yet fsynced). */
  submit (r: Record, sync = false): { seq: Seq, written: Promise<void> } {
    if (this.closed) throw new Error('journal is closed')
    const seq = this.assigned++
    const p = this.open
    p.records.push(r)
    p.bytes += recordBytes(r)
    p.sync ||= sync
    const written = new Promise<void>((resolve, reject) => p.waiters.push({ resolve, reject }))
    // A batch never exceeds the bounds a reader checks: close it when full.
    if (p.bytes >= batchBytesTarget || p.records.length >= batchRecordsMax) this.closeOpen()
    if (!this.writing) this.kick()
    return { seq, written }
  }

  /** fsync barrier: everything submitted so far is written and on disk. */
  async barrier (): Promise<void> {
    await this.idle()
    await this.journal.sync()
  }

  /** Resolves when everything submitted so far is written. */
  idle (): Promise<void> {
    if (!this.writing && this.open.records.length === 0 && this.full.length === 0) return Promise.resolve()
    const done = new Promise<void>(resolve => this.idleWaiters.push(resolve))
    if (!this.writing) this.kick()
    return done
  }

  async close (): Promise<void> {
    await this.idle()
    this.closed = true
  }

  private closeOpen (): void {
    if (this.open.records.length === 0) return
    this.full.push(this.open)
    this.open = fresh()
  }

  private kick (): void {
    if (this.writing) return
    if (this.full.length === 0) this.closeOpen()
    const p = this.full.shift()
    if (!p) {
      for (const w of this.idleWaiters.splice(0)) w()
      return
    }
    this.writing = true
    void this.write(p)
  }

  private async write (p: Pending): Promise<void> {
    for (;;) {
      try {
        const a = await this.journal.appendRecords(p.records, p.sync)
        this.opts.onAppended?.(a)
        break
      } catch (err) {
        // The operations already happened on the backing store: dropping
        // their records would make the journal lie. Keep them and retry
        // (disk full, say); their writers wait. The activity log still marks
        // their paths, so a crash meanwhile resyncs them on restart.
        this.opts.onError?.(err as Error)
        await new Promise(resolve => setTimeout(resolve, this.opts.retryMs ?? 1000))
      }
    }
    this.writing = false
    for (const w of p.waiters) w.resolve()
    this.kick()
  }
}

function fresh (): Pending {
  return { records: [], bytes: 0, sync: false, waiters: [] }
}
