// Byte-range locks per file, for capture ordering. libfuse runs several ops
// at once (one per kernel worker thread) and their completions reach us in
// any order. Two overlapping writes to one file must land on the backing
// store in the order their records get sequence numbers, or a replay would
// end with the other write's bytes. Overlapping ops on one file therefore
// run one at a time; disjoint ones (and other files) run in parallel.
// Pure: no I/O.

interface Held { start: number, end: number, release: Promise<void> }

export class RangeLocks {
  private readonly files = new Map<string, Held[]>()

  /** Waits until [start, end) is free in `key`, takes it, returns the release. */
  async acquire (key: string, start: number, end: number): Promise<() => void> {
    for (;;) {
      const got = this.tryAcquire(key, start, end)
      if (got) return got
      const conflict = this.files.get(key)!.find(h => h.start < end && start < h.end)!
      await conflict.release
    }
  }

  /** Synchronous fast path: takes the range if free, else null. */
  tryAcquire (key: string, start: number, end: number): (() => void) | null {
    const held = this.files.get(key)
    if (held?.some(h => h.start < end && start < h.end)) return null
    let release!: () => void
    const h: Held = { start, end, release: new Promise<void>(resolve => { release = resolve }) }
    if (held) held.push(h)
    else this.files.set(key, [h])
    return () => {
      const l = this.files.get(key)
      if (l) {
        const i = l.indexOf(h)
        if (i >= 0) l.splice(i, 1)
        if (l.length === 0) this.files.delete(key)
      }
      release()
    }
  }
}
