// Buffers the journal is read into, used again once nothing needs what was
// read in them. A new 4 MiB buffer per read was fresh memory for the kernel
// to fault in and, held past two scavenges (a sender's batches wait for the
// socket), garbage that only a full collection frees, 64 MiB of it at a time:
// most of a replicating primary's memory (native-notes/performance.md 22, 25).
//
// Whoever reads into one takes it (one user); whoever keeps a view of it past
// the reader's next step holds it (one more user) and releases it when done.
// The buffer goes back to the spares when the last user releases it. A view
// released too early would be read over while still in use, so the holds are
// few and named: the reader's own, and the socket's until a write is done.
// A hold never released only costs the reuse (the buffer is left to the
// collector); the pool never grows past what is held at once plus the spares.

/** The journal's reads (journal.ts streamSegment): at most this many bytes each. */
export const readChunkBytes = 4 * 1024 * 1024

export class ReadBuffers {
  private readonly spares: Buffer[] = []
  private readonly users = new Map<ArrayBufferLike, { whole: Buffer, n: number }>()

  private readonly bytes = readChunkBytes

  /** At most `sparesMax` buffers kept unused. A read larger than a chunk
   *  (one frame alone) gets a buffer of its own, not reused. */
  constructor (private readonly sparesMax: number) {}

  /** `n` bytes to read into, with one user: the caller. */
  take (n: number): Buffer {
    if (n > this.bytes) return Buffer.allocUnsafe(n)
    const whole = this.spares.pop() ?? Buffer.allocUnsafe(this.bytes)
    this.users.set(whole.buffer, { whole, n: 1 })
    return whole.subarray(0, n)
  }

  /** One more user of the buffer `view` lies in, until `release`. */
  hold (view: Buffer): void {
    const u = this.users.get(view.buffer)
    if (u) u.n++
  }

  /** One user fewer of the buffer `view` lies in; the last one gives it back. */
  release (view: Buffer): void {
    const u = this.users.get(view.buffer)
    if (!u || --u.n > 0) return
    this.users.delete(view.buffer)
    if (this.spares.length < this.sparesMax) this.spares.push(u.whole)
  }

  /** Buffers in use now (tests, status). */
  get inUse (): number { return this.users.size }
}
