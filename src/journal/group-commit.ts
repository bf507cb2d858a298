// Group commit: records arrive one by one from concurrent FUSE ops; each gets
// the group's next sequence number at once (so order is fixed at the moment
// the backing operation completed), and is appended to the journal in a
// batch with its neighbours.
//
// When does a batch close? At the end of the event-loop turn that
// submitted its first record (setImmediate): every FUSE request that
// arrived in the same turn goes into one journal write, and a lone writer
// waits for no timer. A batch also closes early at the size target, and a
// barrier (fsync) closes it and waits for it on disk.
import type { Record, Seq } from '../core/records.js'
import { recordBytes } from '../core/records.js'
import { batchBytesTarget, batchRecordsMax } from '../core/limits.js'
import { describe } from '../core/errors.js'
import type { Appended, Journal } from './journal.js'

type Waiter = () => void

interface Pending {
  records: Record[]
  bytes: number
  sync: boolean
  waiters: Waiter[]
}

export interface GroupCommitOptions {
  /** called when an append fails; the batch is retried, writers keep waiting */
  onError?: (err: Error) => void
  retryMs?: number
}

/** What readers of the appended stream use (sender, overflow): this
 *  group commit, or the native core's (capture/native-capture.ts). */
export interface CommitApi {
  readonly listeners: Array<(a: Appended) => void>
  /** Sequence of the last record handed out. */
  readonly lastAssigned: Seq
  /** Resolves when everything submitted so far is written (and followed). */
  idle (): Promise<void>
  close (): Promise<void>
  /** The append failing now (disk full, I/O error), retried: for status. */
  readonly appendError?: { message: string, since: string } | null
}

export class GroupCommit implements CommitApi {
  /** Told of every batch once it is in the journal file, in order. */
  readonly listeners: Array<(a: Appended) => void> = []
  private open: Pending = fresh()
  private readonly full: Pending[] = [] // closed batches not yet written
  private scheduled = false
  private retrying = false
  private assigned: Seq // next sequence to hand out
  private closed = false
  private idleWaiters: Waiter[] = []
  appendError: { message: string, since: string } | null = null

  constructor (private readonly journal: Journal, private readonly opts: GroupCommitOptions = {}) {
    this.assigned = journal.nextSeq
  }

  /** Sequence of the last record handed out (appended or not). */
  get lastAssigned (): Seq { return this.assigned - 1 }

  /** Gives `r` its sequence number now; `written` is called once the batch
   *  holding it is in the journal file (not yet fsynced). */
  submitCb (r: Record, written: Waiter, sync = false): Seq {
    if (this.closed) throw new Error('journal is closed')
    const seq = this.assigned++
    const p = this.open
    p.records.push(r)
    p.bytes += recordBytes(r)
    p.sync ||= sync
    p.waiters.push(written)
    // A batch never exceeds the bounds a reader checks: close it when full.
    if (p.bytes >= batchBytesTarget || p.records.length >= batchRecordsMax) this.closeOpen()
    this.schedule()
    return seq
  }

  submit (r: Record, sync = false): { seq: Seq, written: Promise<void> } {
    let resolve!: Waiter
    const written = new Promise<void>(res => { resolve = res })
    return { seq: this.submitCb(r, resolve, sync), written }
  }

  /** fsync barrier: everything submitted so far is written and on disk. */
  async barrier (): Promise<void> {
    await this.idle()
    await this.journal.sync()
  }

  /** Resolves when everything submitted so far is written. */
  idle (): Promise<void> {
    if (this.open.records.length === 0 && this.full.length === 0) return Promise.resolve()
    return new Promise<void>(resolve => this.idleWaiters.push(resolve))
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

  private schedule (): void {
    if (this.scheduled || this.retrying) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private flush (): void {
    this.closeOpen()
    while (this.full.length > 0) {
      const p = this.full[0]
      let a: Appended
      try {
        a = this.journal.appendRecords(p.records, p.sync)
      } catch (err) {
        // The operations already happened on the backing store: dropping
        // their records would make the journal lie. Keep them and retry
        // (disk full, say); their writers wait. The activity log still marks
        // their paths, so a crash meanwhile resyncs them on restart.
        this.opts.onError?.(err as Error)
        this.appendError = { message: describe(err), since: this.appendError?.since ?? new Date().toISOString() }
        this.retrying = true
        setTimeout(() => { this.retrying = false; this.flush() }, this.opts.retryMs ?? 1000)
        return
      }
      this.full.shift()
      this.appendError = null
      for (const l of this.listeners) l(a)
      for (const w of p.waiters) w()
    }
    for (const w of this.idleWaiters.splice(0)) w()
  }
}

function fresh (): Pending {
  return { records: [], bytes: 0, sync: false, waiters: [] }
}
