// Buffers the journal is read into (and a connection joins received batches
// into), used again once nothing needs what is in them. A new 4 MiB buffer
// per read was fresh memory for the kernel to fault in and, held past two
// scavenges (a sender's batches wait for the socket), garbage that only a
// full collection frees, 64 MiB of it at a time: most of a replicating
// primary's memory (native-notes/performance.md 22, 25, 26).
//
// Reads are carved one after the other out of the buffer open now, so that
// many small reads share one (a follower in step with small writes reads a
// batch at a time: a buffer each, a 4 KiB batch held in the recent batches
// kept 4 MiB, and sync mode allocated 4 MiB per write). The pool holds the
// open one itself until a read no longer fits in what is left of it.
//
// Whoever reads into one takes it (one user); whoever keeps a view of it past
// the reader's next step holds it (one more user) and releases it when done.
// The buffer goes back to the spares when the last user releases it. A view
// released too early would be read over while still in use, so the holds are
// few and named: in the sender (replicate/sender.ts), a recent batch kept to
// send from memory, a batch in flight until its ack (its hash is taken then),
// a payload handed to the socket until the write is done; on a secondary's
// connection (replicate/transport.ts), a batch received until it is applied.
// A hold never released keeps its buffer as long as the pool lives (the
// pool knows it by its users): every take and hold has its release on every
// path. The pool never grows past what is held at once plus the spares.
// Views of other buffers (a payload the JavaScript journal encoded) are
// neither counted nor reused: holding or releasing them does nothing.

/** The journal's reads (segment-stream.ts, tail.ts): at most this many bytes each. */
export const readChunkBytes = 4 * 1024 * 1024

export class ReadBuffers {
  private readonly bytes = readChunkBytes
  private readonly spares: Buffer[] = []
  private readonly users = new Map<ArrayBufferLike, { whole: Buffer, n: number }>()
  /** The buffer reads are carved from, and where its unused part starts. */
  private open: Buffer | null = null
  private openAt = 0

  /** At most `sparesMax` buffers kept unused. A read larger than a chunk
   *  (one frame alone) gets a buffer of its own, not reused. */
  constructor (private readonly sparesMax: number) {}

  /** `n` bytes to read into, with one user: the caller. */
  take (n: number): Buffer {
    if (n > this.bytes) return Buffer.allocUnsafe(n)
    if (!this.open || this.openAt + n > this.bytes) {
      if (this.open) this.release(this.open) // the pool's own use: nothing more is carved from it
      const whole = this.open = this.spares.pop() ?? Buffer.allocUnsafe(this.bytes)
      this.users.set(whole.buffer, { whole, n: 1 })
      this.openAt = 0
    }
    const view = this.open.subarray(this.openAt, this.openAt + n)
    this.openAt += n
    this.hold(view)
    return view
  }

  /** `n` bytes for a reader's next read: its use of the ones it read into
   *  before (`prev`) ends here. */
  next (n: number, prev: Buffer | null): Buffer {
    if (prev) this.release(prev)
    return this.take(n)
  }

  /** One more user of the buffer `view` lies in, until `release`. */
  hold (view: Uint8Array): void {
    const u = this.users.get(view.buffer)
    if (u) u.n++
  }

  /** One user fewer of the buffer `view` lies in; the last one gives it back. */
  release (view: Uint8Array): void {
    const u = this.users.get(view.buffer)
    if (!u || --u.n > 0) return
    this.users.delete(view.buffer)
    if (this.spares.length < this.sparesMax) this.spares.push(u.whole)
  }

  /** Buffers in use by others than the pool (tests). */
  get inUse (): number {
    let n = 0
    for (const u of this.users.values()) if (u.whole !== this.open || u.n > 1) n++
    return n
  }
}
