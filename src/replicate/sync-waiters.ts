// Sync mode: a write's FUSE reply waits until the secondary acknowledged
// the batch holding it. If the secondary does not acknowledge within the
// sync timeout (down, cut off), waiting writers are released and the pair
// falls back to async, said in the log and in status, like DRBD's protocol
// C with a timeout: never a silent hang. Sync resumes once the secondary
// has caught up with everything.
import type { Seq } from '../core/records.js'

interface Waiter { seq: Seq, reply: () => void, since: number }

export class SyncWaiters {
  fallback = false
  private readonly queue: Waiter[] = [] // in sequence order: records are sequenced in order
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly mode: 'async' | 'sync', private readonly timeoutMs: number, private readonly log: (l: string) => void) {}

  wait (seq: Seq, acked: Seq, reply: () => void): void {
    if (this.mode === 'async' || this.fallback || seq <= acked) return reply()
    this.queue.push({ seq, reply, since: Date.now() })
    if (!this.timer) {
      this.timer = setInterval(() => this.checkTimeout(), Math.min(250, Math.max(10, this.timeoutMs / 4)))
      this.timer.unref()
    }
  }

  /** The secondary acknowledged `seq`; `last` is the newest sequence. */
  ack (seq: Seq, last: Seq): void {
    let n = 0
    while (n < this.queue.length && this.queue[n].seq <= seq) n++
    for (const w of this.queue.splice(0, n)) w.reply()
    if (this.fallback && seq >= last) {
      this.fallback = false
      this.log('sync mode resumed: the secondary has caught up')
    }
  }

  releaseAll (): void {
    for (const w of this.queue.splice(0)) w.reply()
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  get waiting (): number { return this.queue.length }

  private checkTimeout (): void {
    const oldest = this.queue[0]
    if (!oldest) {
      if (this.timer) clearInterval(this.timer)
      this.timer = null
      return
    }
    if (Date.now() - oldest.since < this.timeoutMs) return
    this.fallback = true
    this.log(`sync mode: no acknowledgement from the secondary within ${this.timeoutMs} ms; falling back to async until it catches up (${this.queue.length} writes released)`)
    this.releaseAll()
  }
}
