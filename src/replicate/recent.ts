// The batches appended most recently, kept in memory so a sender that keeps
// up never reads them back from disk. Bounded by bytes; a sender that falls
// behind the oldest one reads the journal instead. Pure: no I/O.
//
// A batch may be noted without its payload (one the sender would not have
// sent from memory: it was behind, reading from disk): it still counts
// toward the bound, so that the lag the status reports reaches as far back
// as when every payload is held.
//
// Lookup by sequence is a binary search (batches are contiguous and in
// order); dropping the oldest advances a head index (no array shifting):
// both stay cheap with tens of thousands of small batches held.
import type { Seq } from '../core/records.js'

export interface HeldBatch { seq: Seq, count: number, payload: Buffer, hash: Buffer, ts: number }
/** A batch noted without its payload. */
export interface NotedBatch { seq: Seq, count: number, bytes: number, ts: number }

// Held as given: a batch's hash may be a getter computed on demand (tail.ts)
interface Entry { seq: Seq, count: number, bytes: number, ts: number, held: HeldBatch | null }

const dropped: Entry = { seq: -1, count: 0, bytes: 0, ts: 0, held: null }

export class RecentBatches {
  private items: Entry[] = []
  private upTo: number[] = [] // cumulative payload bytes through each batch
  private head = 0
  private bytes = 0
  private total = 0 // payload bytes ever pushed

  /** `onDrop`: a held batch is let go (its payload's buffer may be reused). */
  constructor (private readonly bytesMax: number, private readonly onDrop: (b: HeldBatch) => void = () => {}) {}

  /** The next batch: held with its payload, or only noted. */
  push (b: HeldBatch | NotedBatch): void {
    const e: Entry = 'payload' in b
      ? { seq: b.seq, count: b.count, bytes: b.payload.length, ts: b.ts, held: b }
      : { seq: b.seq, count: b.count, bytes: b.bytes, ts: b.ts, held: null }
    this.total += e.bytes
    this.items.push(e)
    this.upTo.push(this.total)
    this.bytes += e.bytes
    while (this.bytes > this.bytesMax && this.items.length - this.head > 1) {
      const old = this.items[this.head]
      this.bytes -= old.bytes
      this.items[this.head] = dropped // let go of the payload now, not at the next compaction
      this.head++
      if (old.held) this.onDrop(old.held)
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.upTo = this.upTo.slice(this.head)
      this.head = 0
    }
  }

  /** Whether a sender whose next batch is `want` would send the batch
   *  appended next, at `seq`, from memory: it has sent everything before it,
   *  or it is at a batch held and goes on from there. Behind that it reads
   *  from disk until it comes to one held, so a payload held meanwhile would
   *  only wait in memory to be dropped unsent (97% of a 1 GiB write into an
   *  async pair, native-notes/performance.md 24). */
  wouldSend (want: Seq, seq: Seq): boolean {
    return want >= seq || this.starting(want) !== null
  }

  /** The batch that starts at `seq`, if held with its payload. */
  starting (seq: Seq): HeldBatch | null {
    const i = this.indexOf(seq)
    return i >= 0 && this.items[i].seq === seq ? this.items[i].held : null
  }

  /** Payload bytes and age of what is held past `acked` (status: lag). */
  after (acked: Seq): { bytes: number, oldestTs: number | null, complete: boolean } {
    const n = this.items.length
    if (n === this.head) return { bytes: 0, oldestTs: null, complete: true }
    const first = this.items[this.head]
    let i = this.indexOf(acked + 1)
    if (i < 0) i = this.head
    const b = this.items[i]
    if (b.seq + b.count - 1 <= acked) return { bytes: 0, oldestTs: null, complete: true }
    const before = i === this.head ? this.upTo[i] - first.bytes : this.upTo[i - 1]
    return { bytes: this.total - before, oldestTs: b.ts, complete: first.seq <= acked + 1 }
  }

  /** Index of the batch holding `seq`, or -1. */
  private indexOf (seq: Seq): number {
    let lo = this.head
    let hi = this.items.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const b = this.items[mid]
      if (seq < b.seq) hi = mid - 1
      else if (seq > b.seq + b.count - 1) lo = mid + 1
      else return mid
    }
    return -1
  }
}
