// Following a journal that another writer appends to (the native core, on
// its FUSE threads): read each new frame back from the segment file, verify
// it, and tell the Journal object and the listeners (sender, overflow,
// extent map) about it, in order (JournalTail); or, where nobody needs the
// batches, only take the writer's position (PositionFollower).
//
// The writer never waits for this: it wakes us (coalesced) and goes on. We
// read what is there up to the end the writer reported, in chunks, yielding
// to the event loop between them so the replicator keeps running while a
// large write streams in. Frames come from the page cache; a frame that is
// not whole yet is read again at the next wake. In the writer's current
// segment nothing past the end it reported is read: the native core writes
// zeros ahead of its end once an application fsyncs (so that the fsyncs do
// not commit a new file size each time), and a frame being written there
// would read as a bad one.
import fs from 'node:fs'
import type { Seq } from '../core/records.js'
import { describe, replError } from '../core/errors.js'
import { frameBytesMax, frameHeaderBytes } from '../core/limits.js'
import { chainHash, decodeBatch } from './codec.js'
import { readChunkBytes } from './read-buffers.js'
import { checkFrameAt } from './frame.js'
import type { Appended, Journal } from './journal.js'
import type { Batch } from '../core/records.js'

/** Where the writer stands (the native core's poll). */
export interface WriterPosition { nextSeq: Seq, segmentFirst: Seq, segmentBytes: number }

/** What the native capture needs of whoever follows the core's journal. */
export interface Follower {
  /** The writer appended something: catch up (coalesced). */
  wake (): void
  /** Resolves once everything the writer had appended when called is followed. */
  caughtUp (): Promise<void>
  /** The writer dropped every segment (rebase): start over at `seq`. */
  restart (seq: Seq): void
  close (): void
}

/** Following a writer whose batches nobody here needs (a mount with no
 *  peer: no sender, no resync to observe them): the journal takes the
 *  writer's position instead of reading every frame back. Reading, checking
 *  and decoding each batch cost about 7.5 us of CPU per batch on this 2-core
 *  VM, a fifth of a plain mount's small writes (native-notes/performance.md
 *  15). The frames are checked where they are read: a sender, the next
 *  open's scan, `journal inspect`. */
export class PositionFollower implements Follower {
  constructor (private readonly journal: Journal, private readonly position: () => WriterPosition & { lastHash: Buffer }) {}

  wake (): void {
    this.journal.adoptPosition(this.position())
  }

  async caughtUp (): Promise<void> { this.wake() }
  restart (): void {}
  close (): void {}
}

export type TailListener = (a: Appended, batch: Batch) => void

// Reads of at most a read buffer's size (the writer's reported end bounds
// them), into the journal's read buffers: the followed batches' payloads are
// views of one, lent to the listeners. One that keeps a payload (the sender,
// for its recent batches) holds it; the rest is read over by a later read.
// A new 4 MiB buffer per read was fresh memory to fault in and, held past
// two scavenges, garbage that only a full collection frees, 64 MiB of it at
// a time (native-notes/performance.md 22, 25).

export class JournalTail implements Follower {
  readonly listeners: TailListener[] = []
  /** Frame bytes followed since this tail started (the writer counts the same way). */
  followedBytes = 0
  private segFirst: Seq
  private offset: number
  private fd = -1
  private running: Promise<void> | null = null
  private again = false
  private idleWaiters: Array<() => void> = []
  /** The buffer read into last: this tail's use of it ends at the next read. */
  private lastRead: Buffer | null = null

  constructor (private readonly journal: Journal, private readonly position: () => WriterPosition,
    private readonly onError: (err: Error) => void) {
    const cur = journal.newestSegment
    this.segFirst = cur?.first ?? journal.nextSeq
    this.offset = cur?.bytes ?? 0
  }

  /** The writer appended something: catch up (coalesced). */
  wake (): void {
    if (this.running) { this.again = true; return }
    this.running = this.run().finally(() => {
      this.running = null
      if (this.again) { this.again = false; this.wake() } else for (const w of this.idleWaiters.splice(0)) w()
    })
  }

  /** Resolves once everything the writer had appended when called is followed. */
  async caughtUp (): Promise<void> {
    this.wake()
    await new Promise<void>(resolve => this.idleWaiters.push(resolve))
  }

  /** The writer dropped every segment (rebase): start over at `seq`. */
  restart (seq: Seq): void {
    this.closeFd()
    this.segFirst = seq
    this.offset = 0
  }

  close (): void {
    this.closeFd()
  }

  private async run (): Promise<void> {
    try {
      for (;;) {
        const w = this.position()
        if (this.journal.nextSeq >= w.nextSeq) return
        const progressed = this.readSome(w.segmentFirst === this.segFirst ? w.segmentBytes : Infinity)
        if (!progressed) {
          // Nothing whole past our offset in this segment: the writer moved
          // on to the next one (named by the next batch's first sequence).
          if (w.segmentFirst > this.segFirst && this.journal.nextSeq >= this.segFirst) {
            this.closeFd()
            this.segFirst = this.journal.nextSeq
            this.offset = 0
            continue
          }
          return // the frame is still being written; the next wake reads it
        }
        await new Promise(resolve => setImmediate(resolve))
      }
    } catch (err) {
      this.onError(replError('JOURNAL_TAIL', `following the journal at segment ${this.segFirst}, byte ${this.offset}: ${describe(err)}`))
    }
  }

  /** Reads whole frames from the current segment up to byte `end`; false if none were there. */
  private readSome (end: number): boolean {
    if (this.fd < 0) {
      try {
        this.fd = fs.openSync(this.journal.segmentPath(this.segFirst), 'r')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
        throw err
      }
    }
    // Payloads are views of the buffer read into, never copies: a copy of
    // each (into zero-filled memory) was 0.85 s of CPU per GiB replicated
    // (native-notes/performance.md 9).
    const want = Math.max(0, Math.min(readChunkBytes, end - this.offset))
    let buf = this.readBuffer(want)
    let n = fs.readSync(this.fd, buf, 0, want, this.offset)
    if (n < frameHeaderBytes) return false
    const first = buf.readUInt32BE(0)
    if (first > frameBytesMax) throw replError('FRAME_TOO_LARGE', `frame of ${first} bytes at byte ${this.offset}`)
    if (frameHeaderBytes + first > buf.length) { // a frame larger than the chunk: read it alone
      buf = this.readBuffer(frameHeaderBytes + first)
      n = fs.readSync(this.fd, buf, 0, Math.max(0, Math.min(buf.length, end - this.offset)), this.offset)
    }
    const read = buf.subarray(0, n)
    let off = 0
    let followed = false
    let last: Appended | null = null
    while (off < n) {
      const f = checkFrameAt(read, off)
      if (!f.ok) {
        if (f.reason === 'short') break
        throw replError('FRAME_CRC', `${f.reason} frame in ${this.journal.segmentPath(this.segFirst)} at byte ${this.offset + off}`)
      }
      const payload = f.payload
      const batch = decodeBatch(payload)
      const a = followedBatch(batch, payload, f.end - off)
      if (a.seq !== this.journal.nextSeq) {
        throw replError('JOURNAL_GAP', `batch at byte ${this.offset + off} starts at sequence ${a.seq}, expected ${this.journal.nextSeq}`)
      }
      this.journal.adopt(a, this.segFirst, this.offset + off)
      this.followedBytes += a.frameBytes
      for (const l of this.listeners) l(a, batch)
      off = f.end
      followed = true
      last = a
    }
    // The journal answers its last hash from the last batch adopted, on
    // demand: taken now, while its bytes are surely still in the buffer.
    if (last) void last.hash
    this.offset += off
    return followed
  }

  /** A buffer of `bytes` to read into; the one read into before is let go. */
  private readBuffer (bytes: number): Buffer {
    return (this.lastRead = this.journal.buffers.next(bytes, this.lastRead))
  }

  private letGo (): void {
    if (this.lastRead) this.journal.buffers.release(this.lastRead)
    this.lastRead = null
  }

  private closeFd (): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
    this.letGo()
  }
}

/** A followed batch. Its chain hash (of the payload) is taken only
 *  when asked for: acknowledgements and the checkpoint need it for a few
 *  batches, following needs it for none. */
function followedBatch (batch: Batch, payload: Buffer, frameBytes: number): Appended {
  let hash: Buffer | null = null
  return {
    seq: batch.seq,
    count: batch.records.length,
    payload,
    frameBytes,
    ts: batch.ts,
    get hash () { return (hash ??= chainHash(this.payload)) }
  }
}
