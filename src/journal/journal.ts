// The journal of one group: append-only segments of framed batches, a
// checkpoint, recovery of a torn tail, trim of acknowledged segments, and
// ordered reading for replay and for the sender.
//
// One writer: appends are serialised by the caller (group-commit.ts on the
// primary, the receiver on the secondary). Readers may run concurrently and
// see only whole batches below `nextSeq`.
import fs, { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import type { Batch, Record, Seq } from '../core/records.js'
import { formatVersion, frameHeaderBytes, segmentBytesDefault, stateReserveBytes } from '../core/limits.js'
import { isReplError, replError } from '../core/errors.js'
import { chainHash, encodeBatch, zeroHash } from './codec.js'
import { frameHeader } from './frame.js'
import { cutMarks, frameMarkAt, listSegments, markFrame, scanSegment, segmentFirstsSync, segmentName, type SegmentHole, type SegmentInfo } from './segments.js'
import { readSegment } from './segment-stream.js'
import { newGeneration, readCheckpoint, writeCheckpoint, writeCheckpointSync, type Checkpoint } from './checkpoint.js'
import { Reserve } from './reserve.js'
import { ReadBuffers } from './read-buffers.js'
import { takeEndMark, endMarkFile } from './end-mark.js'
import { lockStateDir, type StateLock } from './lock.js'

export interface JournalOptions {
  group: string
  segmentBytes?: number
  /** open for reading only: no lock, no tail repair, no writes */
  readOnly?: boolean
}

export interface Recovery {
  segment: string
  offset: number // where the good prefix ends; everything after was cut
  cutBytes: number
  reason: string
}

/** A batch stored by `appendPayloads`, and the journal's mark before it. */
export interface Stored { appended: Appended, before: ReturnType<Journal['mark']> }

/** A stretch of the journal that cannot be read: a bad frame not at the
 *  newest segment's end, a short or missing segment. Sequences fromSeq..toSeq
 *  are lost from the journal (the backing store still has their effect). */
export interface JournalDamage {
  file: string
  offset: number | null // byte of the first bad frame (null: the file is missing or short)
  reason: string
  fromSeq: Seq
  toSeq: Seq
}

export function describeDamage (d: JournalDamage): string {
  return `journal damaged: ${d.file}${d.offset !== null ? ` at byte ${d.offset}` : ''} (${d.reason}): sequences ${d.fromSeq}..${d.toSeq} lost`
}

export interface JournalEntry {
  batch: Batch
  payload: Buffer
}

export interface Appended {
  seq: Seq // first sequence of the batch
  count: number
  /** Lent (the native core's follower reads it into one of the journal's
   *  read buffers): a listener that keeps it past its call holds it
   *  (`journal.buffers`, read-buffers.ts). */
  payload: Buffer
  hash: Buffer
  frameBytes: number
  ts: number // when the batch closed (lag in seconds)
}

/** A writer other than this object (the native core) that appends batches. */
export interface ExternalAppender {
  rebase (seq: Seq, prev: Buffer): Promise<void>
  /** Runs `fn` while no append can happen (the native core's group lock). */
  exclusive<T> (fn: () => T): Promise<T>
}

export class Journal {
  nextSeq: Seq = 1
  /** The chain hash of the newest batch (a followed batch's is taken when asked). */
  get lastHash (): Buffer { return this.lastOf() }
  set lastHash (h: Buffer) { this.lastOf = () => h }
  private lastOf: () => Buffer = () => zeroHash
  checkpoint: Checkpoint = { acked: 0, generation: '', appliedSeq: 0 }
  recovery: Recovery | null = null
  /** Damage met (at open or while reading): never cut, always named. */
  readonly damage: JournalDamage[] = []
  /** What its followers and the sender's reads read into, used again once
   *  nobody holds what was read (read-buffers.ts). Up to 8 kept spare (32
   *  MiB): with fewer, a burst's buffers went to the collector and the
   *  replicating primary peaked higher (native-notes/performance.md 25). */
  readonly buffers = new ReadBuffers(8)
  readonly damageListeners: Array<(d: JournalDamage) => void> = []
  /** The data generation whose end this journal lost (lostTail), if it did at this open. */
  tailLostIn: string | null = null
  /** Set by the primary's wiring: the tail was lost with the machine up
   *  since the backing store's last sync (no power loss), so the backing
   *  store holds every write the journal lost (plan.ts). */
  tailLostOnThisBoot = false
  /** The native core's end mark from this boot was there to check the end against (end-mark.ts). */
  endMarkThisBoot = false
  /** Damage in the state files met at open and outlived (a checkpoint copy): named, nothing lost. */
  readonly stateDamage: string[] = []
  private segments: SegmentInfo[] = []
  private fd = -1
  /** The size of the file `fd` appends to: the newest segment's bytes, or
   *  past them the zeros written ahead of its end (preallocate). */
  private fileBytes = 0
  /** The newest segment's bytes at the last sync (preallocate). */
  private syncedBytes = 0
  /** Syncs under way in the pool: finished segments, new segments' names.
   *  Each leaves the set when done; the first that failed is kept for the
   *  next sync() to report (a rejection nothing awaited yet would have
   *  ended the process, and an async-mode secondary may not sync for long). */
  private retiring = new Set<Promise<void>>()
  private retiredError: Error | null = null
  private durableSeq: Seq = 0 // on disk through this sequence (0: not known yet)
  private syncing: Promise<void> | null = null
  private lock: StateLock | null = null
  private readonly segmentBytes: number
  /** Where the last batch of the journal starts (segment and byte), when
   *  known: the native core verifies the end it is handed there. */
  tail: { segment: Seq, offset: number } | null = null
  /** Set while the native core appends to this journal (then this object
   *  only follows it: see tail.ts); its rebase runs under the core's lock. */
  private external: ExternalAppender | null = null
  /** Segments holding records past this are kept even once acknowledged:
   *  the backing store may need them redone (capture/backing-sync.ts). */
  trimFloor: () => Seq = () => Infinity
  /** Brings the trim floor up to `seq` (a primary syncs its backing store):
   *  a rebase drops every segment, floor or not. */
  raiseFloor: (seq: Seq) => Promise<void> = async () => {}

  private constructor (readonly dir: string, readonly opts: JournalOptions) {
    this.segmentBytes = opts.segmentBytes ?? segmentBytesDefault
  }

  static async open (dir: string, opts: JournalOptions): Promise<Journal> {
    const j = new Journal(dir, opts)
    if (!opts.readOnly) {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
      j.lock = await lockStateDir(dir)
    }
    try {
      await j.recover()
    } catch (err) {
      await j.lock?.release()
      throw err
    }
    return j
  }

  /** Total bytes of segment files: the queue depth the overflow policy watches. */
  get bytes (): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0)
  }

  get segmentCount (): number { return this.segments.length }

  get lastSeq (): Seq { return this.nextSeq - 1 }

  private async recover (): Promise<void> {
    const cp = await readCheckpoint(this.dir, what => this.stateDamage.push(what))
    if (cp) {
      this.checkpoint = cp
      // A damaged copy is healed at once (the other one held the same); on
      // a full disk the next checkpoint write heals it.
      if (this.stateDamage.length > 0 && !this.opts.readOnly) await writeCheckpoint(this.dir, cp).catch(() => {})
    } else if (!this.opts.readOnly) {
      this.checkpoint = { acked: 0, generation: newGeneration(), appliedSeq: 0 }
      await writeCheckpoint(this.dir, this.checkpoint)
    }
    const mark = this.opts.readOnly ? null : takeEndMark(this.dir)
    this.endMarkThisBoot = mark !== null
    this.segments = await listSegments(this.dir)
    // The segment the core appended to last: the newest, which no trim or
    // retention drops (a torn-empty one goes below, after this look).
    const markSegmentGone = mark !== null && mark.segment > 0 && !this.segments.some(s => s.first === mark.segment)
    this.nextSeq = Math.max(this.checkpoint.acked, this.checkpoint.appliedSeq) + 1
    this.lastHash = this.checkpoint.ackedHash ? Buffer.from(this.checkpoint.ackedHash) : zeroHash
    // Walk back from the newest segment to the newest good batch. Only the
    // end of the newest segment, with nothing valid after it, is a torn
    // tail: it is cut here, and reported. Any other bad stretch is damage:
    // named, kept, and the valid batches after it with it (noteDamage).
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]
      const scan = await scanSegment(seg.path)
      const newest = i === this.segments.length - 1
      // The zeros the native core writes ahead of its end, left by an
      // unclean stop: not a torn tail, nothing to report.
      if (newest && scan.zerosAt !== null && !this.opts.readOnly) {
        await fsp.truncate(seg.path, scan.zerosAt)
        seg.bytes = scan.zerosAt
      }
      for (const hole of scan.holes) {
        if (hole.resumeAt === null && newest) {
          // In those zeros, bytes that are not: no frame a crash tore
          // (a frame's header comes first), so damage, though no record was lost.
          if (hole.inZeros) this.stateDamage.push(`journal segment ${seg.path} damaged: ${hole.reason}; ${seg.bytes - hole.offset} bytes cut, no record lost`)
          else this.recovery = { segment: seg.path, offset: hole.offset, cutBytes: seg.bytes - hole.offset, reason: hole.reason }
          if (!this.opts.readOnly) {
            await fsp.truncate(seg.path, hole.offset)
            seg.bytes = hole.offset
          }
          continue
        }
        const before = scan.batches.filter(b => b.offset < hole.offset).pop()
        const after = scan.batches.find(b => b.offset > hole.offset)
        await this.noteDamage({
          file: seg.path, offset: hole.offset, reason: hole.reason,
          fromSeq: before ? before.batch.seq + before.batch.records.length : seg.first,
          toSeq: after ? after.batch.seq - 1 : (this.segments[i + 1]?.first ?? this.nextSeq) - 1
        })
      }
      const last = scan.batches[scan.batches.length - 1]
      if (last) {
        this.nextSeq = last.batch.seq + last.batch.records.length
        this.lastHash = chainHash(last.payload)
        this.tail = { segment: seg.first, offset: last.offset }
        break
      }
      this.nextSeq = Math.max(this.nextSeq, seg.first)
      if (!this.opts.readOnly && newest && scan.batches.length === 0) {
        // A segment torn before its first batch holds nothing: drop it.
        await fsp.unlink(seg.path)
        this.segments.pop()
      }
    }
    await this.lostTail(Math.max(this.checkpoint.acked, this.checkpoint.appliedSeq), 'its checkpoint records')
    if (!mark) return
    if (this.lastSeq < mark.seq) {
      await this.lostTail(mark.seq, `the native core appended through on this boot (${endMarkFile})`)
    } else if (markSegmentGone) {
      // Everything it held is still known (acknowledged): nothing lost, but named.
      await this.noteDamage({
        file: join(this.dir, segmentName(mark.segment)), offset: null, fromSeq: mark.segment, toSeq: mark.seq,
        reason: `missing: the native core was appending to it on this boot (${endMarkFile}); its sequences were acknowledged, nothing is lost`
      })
    }
  }

  /** Sequences up to `floor` are known to have existed (acknowledged by
   *  the peer, applied here, or, by the caller, the backing store synced
   *  through them on this boot): a journal that ends before it lost its end
   *  (a truncated or deleted segment), which no crash of the process does.
   *  Named as damage (a full resync when the peer may lack them), and the
   *  journal goes on after the floor: a sequence number is never given
   *  twice (the peer may hold the lost ones). */
  async lostTail (floor: Seq, known: string): Promise<void> {
    const cp = this.checkpoint
    const end = this.nextSeq - 1
    if (end >= floor) return
    const newest = this.segments[this.segments.length - 1]
    await this.noteDamage({
      file: newest?.path ?? this.dir, offset: newest ? newest.bytes : null,
      reason: `the journal ends at sequence ${end}, before sequence ${floor} ${known} (a truncated or deleted segment)`,
      fromSeq: end + 1, toSeq: floor
    })
    this.tailLostIn = cp.generation
    this.nextSeq = floor + 1
    this.lastHash = cp.acked === floor && cp.ackedHash ? Buffer.from(cp.ackedHash) : zeroHash
    this.tail = null
    if (this.opts.readOnly) return
    // Appends go to a segment of their own, named for where they start (the
    // native core, too, continues an empty newest segment of that name).
    const seg = { first: this.nextSeq, path: join(this.dir, segmentName(this.nextSeq)), bytes: 0 }
    fs.closeSync(fs.openSync(seg.path, fsc.O_WRONLY | fsc.O_CREAT, 0o600))
    const dfd = fs.openSync(this.dir, 'r')
    try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
    this.segments.push(seg)
  }

  /** The peer holds sequences `fromSeq`..`toSeq` of this side's history
   *  that this journal lost with no trace here (a deleted segment, with the
   *  checkpoint behind what was shipped: replicate/plan.ts): damage. */
  async notePeerHeldLost (fromSeq: Seq, toSeq: Seq): Promise<void> {
    await this.noteDamage({ file: this.dir, offset: null, reason: `the secondary holds sequences ${fromSeq}..${toSeq} of this side's history that this journal no longer has (acknowledged through ${this.checkpoint.acked}): a deleted or truncated segment`, fromSeq, toSeq })
  }

  /** A primary's journal starts where its checkpoint says the peer's
   *  acknowledgement or a drop on purpose (retention, the switch to
   *  tracking: `dropped`) left it, or earlier: a first
   *  segment starting later means one was deleted, and what it held is
   *  lost (a peer resumed from the acknowledged point would miss it). Before,
   *  the hole read as an overflow: a partial resync of the dirty set, which
   *  does not hold those records. */
  async noteHeadLost (): Promise<void> {
    const from = Math.max(this.checkpoint.acked, this.checkpoint.dropped ?? 0) + 1
    if (this.segments.length === 0 || this.firstSeq <= from) return
    await this.noteDamage({
      file: this.dir, offset: null, fromSeq: from, toSeq: this.firstSeq - 1,
      reason: `its first segment starts at sequence ${this.firstSeq}, past sequence ${from - 1} that its checkpoint accounts for: a deleted segment`
    })
  }

  /** Records damage once; if it lost sequences the peer has not
   *  acknowledged, the checkpoint asks for a full resync (the extents they
   *  held are unknown), which survives a restart and a trim. */
  private async noteDamage (d: JournalDamage): Promise<void> {
    if (this.damage.some(x => x.file === d.file && x.offset === d.offset && x.fromSeq === d.fromSeq)) return
    this.damage.push(d)
    for (const fn of this.damageListeners) fn(d)
    if (d.toSeq > this.checkpoint.acked && !this.checkpoint.resyncFull && !this.opts.readOnly) {
      this.checkpoint = { ...this.checkpoint, resyncFull: true }
      await this.writeCp()
    }
  }

  /** Encodes and appends one batch of records (the primary). */
  appendRecords (records: Record[], sync: boolean): Appended {
    const batch: Batch = { v: formatVersion, group: this.opts.group, seq: this.nextSeq, prev: this.lastHash, ts: Date.now(), sync, records }
    return this.appendPayload(encodeBatch(batch), batch)
  }

  /** Appends an already encoded batch verbatim (the secondary stores what it
   *  received, so both journals hash to the same chain).
   *
   *  Synchronous on purpose: the FUSE server's event loop is the only
   *  writer, an append to the page cache takes microseconds, and a thread
   *  pool round trip per batch would cost more than the write (measured:
   *  native-notes/threading.md). Durability comes from `sync()`. */
  appendPayload (payload: Buffer, batch: Batch, retried = false): Appended {
    if (this.opts.readOnly) throw new Error('journal opened read-only')
    if (batch.seq !== this.nextSeq) {
      throw replError('JOURNAL_GAP', `batch starts at sequence ${batch.seq}, the journal expects ${this.nextSeq}`)
    }
    if (!Buffer.from(batch.prev).equals(this.lastHash)) {
      throw replError('JOURNAL_CHAIN', `batch ${batch.seq} does not continue this journal's history (previous-batch hash differs)`,
        'the two sides have diverged; resync is needed')
    }
    let cur = this.segments[this.segments.length - 1]
    if (this.fd < 0 || !cur || cur.bytes >= this.segmentBytes) cur = this.rotate(batch.seq)
    const header = frameHeader(payload)
    const frameBytes = header.length + payload.length
    let written = 0
    try {
      written = fs.writevSync(this.fd, [header, payload], cur.bytes)
      if (written !== frameBytes) throw replError('JOURNAL_FULL', `short journal write: ${written} of ${frameBytes} bytes`)
    } catch (err) {
      // Leave no half frame behind: the retry appends at the same place.
      if (written > 0 || this.fileBytes > cur.bytes) {
        fs.ftruncateSync(this.fd, cur.bytes)
        this.fileBytes = cur.bytes
      }
      // A full filesystem, and only whole segments before the newest are
      // ever trimmed: a secondary whose one segment holds everything it
      // applied would wait for room for good. Its next batch starts a
      // segment of its own; what is acknowledged goes now (the rest at its
      // ack), and the batch is tried once more.
      const full = isReplError(err, 'JOURNAL_FULL') || (err as NodeJS.ErrnoException).code === 'ENOSPC'
      if (!full || retried || cur.bytes === 0) throw err
      this.rotate(batch.seq, true)
      this.trimSync()
      return this.appendPayload(payload, batch, true)
    }
    return this.passFrame(cur, payload, batch, chainHash(payload))
  }

  /** The batch's frame is in `cur` at its end: the journal moves past it. */
  private passFrame (cur: SegmentInfo, payload: Buffer, batch: Batch, hash: Buffer): Appended {
    const frameBytes = frameHeaderBytes + payload.length
    this.tail = { segment: cur.first, offset: cur.bytes }
    markFrame(cur, batch.seq, cur.bytes)
    cur.bytes += frameBytes
    this.fileBytes = Math.max(this.fileBytes, cur.bytes)
    this.nextSeq = batch.seq + batch.records.length
    this.lastHash = hash
    return { seq: batch.seq, count: batch.records.length, payload, hash, frameBytes, ts: batch.ts }
  }

  /** Appends several encoded batches in order, with one write for those
   *  that start in the same segment (the secondary stores every batch of
   *  one read of the socket together: a batch per small write, and a
   *  `writev` each was a quarter of its CPU, native-notes/performance.md 19).
   *  The segments end up as one `appendPayload` at a time leaves them. Each
   *  batch comes back with the journal's mark before it (for `undo`). All
   *  are stored or, at the first that fails, those before it, and it throws
   *  as `appendPayload` would; nothing is written past a batch off the chain. */
  appendPayloads (items: Array<{ payload: Buffer, batch: Batch }>): Stored[] {
    const out: Stored[] = []
    let i = 0
    while (i < items.length) {
      const cur = this.segments[this.segments.length - 1]
      if (this.fd < 0 || !cur || cur.bytes >= this.segmentBytes) { // the next starts a segment
        out.push(...this.appendEach([items[i++]]))
        continue
      }
      let end = i
      for (let bytes = cur.bytes; end < items.length && bytes < this.segmentBytes; end++) bytes += frameHeaderBytes + items[end].payload.length
      out.push(...this.appendTogether(cur, items.slice(i, end)))
      i = end
    }
    return out
  }

  /** Batches that all start in the current segment `cur`, in one write. */
  private appendTogether (cur: SegmentInfo, items: Array<{ payload: Buffer, batch: Batch }>): Stored[] {
    if (items.length < 2) return this.appendEach(items)
    // The chain first: nothing is written unless every batch continues it.
    let nextSeq = this.nextSeq
    let prev = this.lastHash
    const hashes: Buffer[] = []
    for (const { payload, batch } of items) {
      if (batch.seq !== nextSeq || !Buffer.from(batch.prev).equals(prev)) return this.appendEach(items) // its own error, in order
      prev = chainHash(payload)
      hashes.push(prev)
      nextSeq = batch.seq + batch.records.length
    }
    const iov: Buffer[] = []
    for (const { payload } of items) iov.push(frameHeader(payload), payload)
    const total = iov.reduce((n, b) => n + b.length, 0)
    let written = 0
    try {
      written = fs.writevSync(this.fd, iov, cur.bytes)
    } catch {}
    if (written !== total) {
      // Leave no part of them behind; one at a time, each fails (or makes
      // room) as appendPayload does.
      if (written > 0 || this.fileBytes > cur.bytes) {
        fs.ftruncateSync(this.fd, cur.bytes)
        this.fileBytes = cur.bytes
      }
      return this.appendEach(items)
    }
    return items.map(({ payload, batch }, i) => {
      const before = this.mark()
      return { before, appended: this.passFrame(cur, payload, batch, hashes[i]) }
    })
  }

  private appendEach (items: Array<{ payload: Buffer, batch: Batch }>): Stored[] {
    return items.map(({ payload, batch }) => {
      const before = this.mark()
      return { before, appended: this.appendPayload(payload, batch) }
    })
  }

  /** Opens the segment appends go to: a new one when the newest is full
   *  (or `fresh`, and it holds anything). */
  private rotate (firstSeq: Seq, fresh = false): SegmentInfo {
    if (this.fd >= 0) {
      // The finished segment ends at its last frame, and reaches the disk
      // in the background (an fsync of 64 MiB would stall every FUSE op);
      // sync() waits for it.
      this.cutZeros()
      this.syncInBackground(this.fd, fs.fdatasync)
      this.fd = -1
    }
    let cur = this.segments[this.segments.length - 1]
    if (!cur || cur.bytes >= this.segmentBytes || (fresh && cur.bytes > 0)) {
      cur = { first: firstSeq, path: join(this.dir, segmentName(firstSeq)), bytes: 0 }
      this.segments.push(cur)
    }
    // Not O_APPEND: appends go to the end of the frames, over the zeros
    // written ahead of it.
    this.fd = fs.openSync(cur.path, fsc.O_WRONLY | fsc.O_CREAT, 0o600)
    cur.bytes = fs.fstatSync(this.fd).size
    cutMarks(cur, cur.bytes)
    this.fileBytes = this.syncedBytes = cur.bytes
    // The new name must survive a crash too: synced in the background with
    // the finished segment, and sync() waits for both. On this thread it
    // was 0.76 s per GiB a secondary stored (ext4 commits its journal for a
    // directory's fsync, with the data ordered before it).
    this.syncInBackground(fs.openSync(this.dir, 'r'), fs.fsync)
    return cur
  }

  /** `sync` of `fd` in the pool, then closes it (see `retiring`). */
  private syncInBackground (fd: number, sync: typeof fs.fsync): void {
    const p = new Promise<void>(resolve => sync(fd, err => fs.close(fd, () => {
      if (err) this.retiredError ??= err
      resolve()
    })))
    this.retiring.add(p)
    void p.then(() => this.retiring.delete(p))
  }

  /** Zeros ahead of the newest segment's end before an fdatasync, when
   *  fewer than `preallocLowBytes` are left (never past the segment's size).
   *  An fdatasync after an append that grew the file must commit the new
   *  size, an ext4 journal commit each time: appending 4 KiB and syncing
   *  took 350-390 us here against 155-185 us for the same write into blocks
   *  already written (p50s). The sync below carries the zeros' size once;
   *  the next ~50 small sync batches of a sync-mode secondary then cost a
   *  data write each. The native core does the same (journal.c, prealloc).
   *  Only for small syncs: when more than `preallocLowBytes` came since the
   *  last sync, the frames would run past the zeros anyway, and writing
   *  zeros ahead of every large batch doubled the bytes a sync-mode
   *  secondary wrote (sequential 1 MiB writes lost 10-15%).
   *  Best effort: fewer zeros only cost speed; readers stop at a header of
   *  zeros and recovery cuts them (segments.ts). */
  private preallocate (): void {
    const cur = this.segments[this.segments.length - 1]
    if (this.fd < 0 || !cur) return
    const sinceSync = cur.bytes - this.syncedBytes
    this.syncedBytes = cur.bytes
    if (sinceSync < 0 || sinceSync > preallocLowBytes || this.fileBytes >= cur.bytes + preallocLowBytes) return
    const end = Math.min(cur.bytes + preallocBytes, this.segmentBytes)
    try {
      while (this.fileBytes < end) {
        const n = fs.writeSync(this.fd, preallocZeros, 0, Math.min(preallocZeros.length, end - this.fileBytes), this.fileBytes)
        if (n <= 0) return
        this.fileBytes += n
      }
    } catch {} // a full filesystem: no zeros ahead
  }

  /** A segment closed or handed on ends at its last frame: the zeros go. */
  private cutZeros (): void {
    const cur = this.segments[this.segments.length - 1]
    if (this.fd < 0 || !cur || this.fileBytes <= cur.bytes) return
    fs.ftruncateSync(this.fd, cur.bytes)
    this.fileBytes = cur.bytes
  }

  private closeFile (): void {
    try { this.cutZeros() } finally {
      fs.closeSync(this.fd)
      this.fd = -1
    }
  }

  /** From now on `appender` writes the segments; this object closes its own
   *  file and follows the appends through `adopt` (journal/tail.ts). */
  handOver (appender: ExternalAppender): void {
    this.stopAppending()
    this.external = appender
  }

  /** Closes the file appends go to, on disk and ending at its last frame:
   *  before the native core opens the journal (it takes the file's size for
   *  the end of its frames). */
  stopAppending (): void {
    if (this.fd < 0) return
    this.cutZeros()
    fs.fdatasyncSync(this.fd)
    this.closeFile()
  }

  /** A batch the external appender wrote at the end of the segment that
   *  starts at `segmentFirst`. */
  adopt (a: { seq: Seq, count: number, hash: Buffer, frameBytes: number }, segmentFirst: Seq, offset: number): void {
    let cur = this.segments[this.segments.length - 1]
    if (!cur || cur.first !== segmentFirst) {
      cur = { first: segmentFirst, path: join(this.dir, segmentName(segmentFirst)), bytes: 0 }
      this.segments.push(cur)
    }
    if (offset === cur.bytes) markFrame(cur, a.seq, offset) // where the follower read it: the same, unless a cut came between
    cur.bytes += a.frameBytes
    this.nextSeq = a.seq + a.count
    this.lastOf = () => a.hash
    this.durableSeq = Math.min(this.durableSeq, a.seq - 1)
  }

  /** Where the external appender stands, taken without reading its frames
   *  (a mount with no peer: nothing needs the batches themselves). Each
   *  segment it finished since ends at its last frame (the core cuts its
   *  zeros before it names the next one), so its file size is its length;
   *  the newest one's length is the appender's. */
  adoptPosition (w: { nextSeq: Seq, lastHash: Buffer, segmentFirst: Seq, segmentBytes: number }): void {
    if (w.nextSeq <= this.nextSeq || w.segmentFirst === 0) return
    let cur = this.segments[this.segments.length - 1]
    if (cur && cur.first > w.segmentFirst) return // a rebase under way: the next position is past it
    if (!cur || cur.first !== w.segmentFirst) {
      const finished = segmentFirstsSync(this.dir).filter(first => first > (cur?.first ?? 0) && first < w.segmentFirst)
      if (cur) cur.bytes = fs.statSync(cur.path).size
      for (const first of [...finished, w.segmentFirst]) {
        const path = join(this.dir, segmentName(first))
        this.segments.push(cur = { first, path, bytes: first === w.segmentFirst ? 0 : fs.statSync(path).size })
      }
    }
    cur!.bytes = w.segmentBytes
    this.durableSeq = Math.min(this.durableSeq, this.nextSeq - 1)
    this.nextSeq = w.nextSeq
    this.lastOf = () => w.lastHash
  }

  /** The segment being appended to (null: none yet). */
  get newestSegment (): SegmentInfo | null {
    return this.segments[this.segments.length - 1] ?? null
  }

  segmentPath (first: Seq): string {
    return join(this.dir, segmentName(first))
  }

  /** Where the journal ends now, for `undo`: the newest segment by name
   *  (older ones may be trimmed meanwhile) and its length. */
  mark (): { nextSeq: Seq, lastHash: Buffer, segment: Seq | null, bytes: number } {
    const cur = this.segments[this.segments.length - 1]
    return { nextSeq: this.nextSeq, lastHash: this.lastHash, segment: cur?.first ?? null, bytes: cur?.bytes ?? 0 }
  }

  /** First sequence of the second oldest segment (null: fewer than two):
   *  the oldest can be trimmed once everything before this is applied. */
  get trimmableBelow (): Seq | null {
    return this.segments[1]?.first ?? null
  }

  /** Takes back what was appended since `m` (a batch the secondary refused
   *  halfway): cut to the old end, as if it never came. */
  async undo (m: ReturnType<Journal['mark']>): Promise<void> {
    while (this.segments.length > 0 && this.segments[this.segments.length - 1].first !== m.segment) {
      if (this.fd >= 0) this.closeFile() // the newest segment's: it goes
      const s = this.segments.pop()!
      await fsp.unlink(s.path).catch(() => {})
    }
    const cur = this.segments[this.segments.length - 1]
    if (cur && cur.bytes !== m.bytes) {
      await fsp.truncate(cur.path, m.bytes)
      cur.bytes = m.bytes
      cutMarks(cur, m.bytes)
      this.fileBytes = Math.min(this.fileBytes, m.bytes) // the zeros went with the cut
    }
    this.nextSeq = m.nextSeq
    this.lastHash = m.lastHash
    this.durableSeq = Math.min(this.durableSeq, this.lastSeq)
  }

  /** Makes every appended batch durable (fsync barrier). */
  /** Concurrent callers share one fdatasync (group commit of syncs: the
   *  primary's fsyncs, the secondary's sync batches). A caller that comes
   *  while one is under way waits for the next: its batches may be newer. */
  /** On disk through this sequence (0: not known yet). */
  get durableThrough (): Seq { return this.durableSeq }

  async sync (): Promise<void> {
    const target = this.lastSeq
    while (this.durableSeq < target) {
      if (!this.syncing) {
        const upTo = this.lastSeq
        this.syncing = this.syncNow()
          .then(() => { this.durableSeq = Math.max(this.durableSeq, upTo) })
          .finally(() => { this.syncing = null })
      }
      await this.syncing
    }
  }

  /** sync() on the calling thread, when that is all it needs: no fdatasync
   *  under way and no finished segment still being synced. False when it
   *  could not (call sync() then). For a caller with nothing else to do
   *  meanwhile (a sync-mode secondary): it saves the thread pool's round
   *  trip, five system calls and two thread wake-ups, which cost more than
   *  the flush itself on this VM. */
  syncHere (): boolean {
    if (this.durableSeq >= this.lastSeq) return true
    if (this.syncing || this.retiring.size > 0 || this.retiredError || this.fd < 0) return false
    const upTo = this.lastSeq
    this.preallocate()
    fs.fdatasyncSync(this.fd)
    this.durableSeq = Math.max(this.durableSeq, upTo)
    return true
  }

  private async syncNow (): Promise<void> {
    const fd = this.fd
    this.preallocate()
    const current = fd < 0 ? null : new Promise<void>((resolve, reject) => fs.fdatasync(fd, err => err ? reject(err) : resolve()))
    await Promise.all([...this.retiring, current])
    const failed = this.retiredError
    this.retiredError = null
    if (failed) throw failed
  }

  /** Records the peer's acknowledgement and deletes wholly acknowledged
   *  segments (never the newest: it carries the chain's tail). */
  async ack (seq: Seq, hash?: Uint8Array, patch: Partial<Checkpoint> = {}): Promise<void> {
    if (seq <= this.checkpoint.acked) return
    const before = this.checkpoint
    // Without the hash of `seq` none is kept: the previous one belongs to an
    // older sequence, and the chain after a trim continues from this one.
    this.checkpoint = { ...this.checkpoint, ...patch, acked: seq, ackedHash: hash ? Buffer.from(hash) : undefined }
    try {
      await this.writeCp()
    } catch (err) {
      // Not on disk (state directory full, say): nothing is trimmed, and a
      // later ack of the same sequence writes it again.
      this.checkpoint = before
      throw err
    }
    await this.trim()
  }

  /** Deletes segments that are wholly acknowledged and below the trim
   *  floor (also when the floor moves: capture/backing-sync.ts). */
  async trim (): Promise<void> {
    const upTo = Math.min(this.checkpoint.acked, this.trimFloor())
    while (this.segments.length > 1 && this.segments[1].first <= upTo + 1) {
      const old = this.segments.shift()!
      await fsp.unlink(old.path).catch(() => {})
    }
    if (this.reserve && !this.reserve.held) this.reserve.keep()
  }

  /** Whether the oldest segment is wholly acknowledged and kept only by the trim floor. */
  get heldByFloor (): boolean {
    if (this.segments.length < 2) return false
    const end = this.segments[1].first - 1
    return end <= this.checkpoint.acked && end > this.trimFloor()
  }

  private trimmingAcked: Promise<void> | null = null
  private trimAckedFailedAt = 0
  /** The floor raised to the acknowledged point, then trimmed: for a
   *  journal at its limit or whose appends fail (its filesystem full), whose
   *  acknowledged segments the floor holds (they would go at the next
   *  background sync, up to 30 s later). Whoever waits for room asks again
   *  and again: one pass at a time (a caller during one waits for it), none
   *  while the floor holds nothing, and none within a second of one that
   *  failed (the backing store's sync). */
  async trimAcked (): Promise<void> {
    if (this.trimmingAcked) return this.trimmingAcked
    if (Date.now() - this.trimAckedFailedAt < 1000 || !this.heldByFloor) return
    this.trimmingAcked = (async () => {
      try {
        await this.raiseFloor(this.checkpoint.acked)
        await this.trim()
      } catch (err) {
        this.trimAckedFailedAt = Date.now()
        throw err
      } finally {
        this.trimmingAcked = null
      }
    })()
    return this.trimmingAcked
  }

  /** The same, synchronously (under the core's group lock: writeCp). */
  private trimSync (): void {
    const upTo = Math.min(this.checkpoint.acked, this.trimFloor())
    while (this.segments.length > 1 && this.segments[1].first <= upTo + 1) {
      const old = this.segments.shift()!
      try { fs.unlinkSync(old.path) } catch {}
    }
  }

  private reserve: Reserve | null = null
  /** Either side keeps a reserve in its state directory (reserve.ts), so
   *  that a journal that filled its filesystem can still record
   *  acknowledgements (the secondary: what it applied) and be trimmed.
   *  False when there is no room for it now (made later, after a trim). */
  keepReserve (): boolean {
    this.reserve ??= new Reserve(this.dir, stateReserveBytes)
    return this.reserve.keep()
  }

  /** First sequence the journal still holds (nextSeq when it holds none). */
  get firstSeq (): Seq {
    return this.segments[0]?.first ?? this.nextSeq
  }

  /** The oldest segment and the first sequence after it, or null when
   *  there is only the newest (never dropped: it carries the chain's tail
   *  and is the one being appended to). */
  get oldest (): { path: string, first: Seq, bytes: number, nextFirst: Seq } | null {
    if (this.segments.length < 2) return null
    const s = this.segments[0]
    return { path: s.path, first: s.first, bytes: s.bytes, nextFirst: this.segments[1].first }
  }

  /** Deletes the oldest segment, acknowledged or not, if it is still the
   *  one starting at `first` (a trim may have taken it meanwhile): retention
   *  of a primary without a peer (capture/retention.ts), which first folded
   *  what it held into the dirty set. Never the newest. */
  async dropOldest (first: Seq): Promise<void> {
    if (this.segments.length < 2 || this.segments[0].first !== first) return
    const old = this.segments.shift()!
    await fsp.unlink(old.path).catch(() => {})
  }

  /** Starts history over at `seq` after a batch whose hash is `prev`:
   *  every segment is dropped (a resync replaces what they described). */
  async rebase (seq: Seq, prev: Buffer): Promise<void> {
    await this.raiseFloor(seq - 1)
    if (this.external) {
      await this.external.rebase(seq, prev) // drops the segment files under the core's lock
      this.segments = []
      this.tail = null
      this.nextSeq = seq
      this.lastHash = prev
      this.durableSeq = seq - 1
      await this.setCheckpoint({ acked: seq - 1, ackedHash: prev })
      return
    }
    await this.sync()
    if (this.fd >= 0) this.closeFile()
    for (const s of this.segments.splice(0)) await fsp.unlink(s.path).catch(() => {})
    this.tail = null
    this.nextSeq = seq
    this.lastHash = prev
    this.durableSeq = seq - 1 // nothing past the base is stored
    await this.setCheckpoint({ acked: seq - 1, ackedHash: prev })
  }

  /** Chain hash of the batch that ends at `seq` in this journal's history,
   *  or null if the journal cannot tell (trimmed, or not a batch end). */
  async hashAt (seq: Seq): Promise<Buffer | null> {
    if (seq === this.lastSeq) return this.lastHash
    if (seq === this.checkpoint.acked && this.checkpoint.ackedHash) return Buffer.from(this.checkpoint.ackedHash)
    if (seq > this.lastSeq) return null
    try {
      for await (const { batch, payload } of this.read(seq)) {
        const end = batch.seq + batch.records.length - 1
        return end === seq ? chainHash(payload) : null
      }
    } catch {
      return null // unreadable: the journal cannot prove a common history (never a split brain)
    }
    return null
  }

  async setCheckpoint (patch: Partial<Checkpoint>): Promise<void> {
    this.checkpoint = { ...this.checkpoint, ...patch }
    await this.writeCp()
  }

  private cpChain: Promise<void> = Promise.resolve()
  /** Checkpoint writes one at a time, each of the newest state: two at once
   *  (an ack's and an overflow's rebase) shared one temporary file, and the
   *  second rename failed ENOENT, an unhandled rejection that killed the
   *  primary. */
  private writeCp (): Promise<void> {
    const p = this.cpChain.then(() => writeCheckpoint(this.dir, this.checkpoint).catch(err => this.writeCpFull(err)))
    this.cpChain = p.catch(() => {})
    return p
  }

  /** The checkpoint did not fit: the state directory is full (the journal
   *  took every byte, say). Only a trim gives room back, and a trim waits
   *  for this checkpoint: the reserve is given back for it, with no append
   *  able to take the bytes first (the core's group lock), the checkpoint
   *  written, what it acknowledges trimmed, and the reserve made again from
   *  the room the trim gave. Before, nothing was ever trimmed and appends
   *  (and the re-journal of what an unclean stop left owed) failed for good. */
  private async writeCpFull (err: unknown): Promise<void> {
    await this.writeWithReserve(err, () => writeCheckpointSync(this.dir, this.checkpoint))
  }

  /** A state file's write failed with `err`: if the state directory is full
   *  and the reserve is held, `write` (synchronous) runs again with the
   *  reserve given back, under the core's lock, then what it lets go is
   *  trimmed and the reserve made again; else `err` is thrown. For the
   *  checkpoint, and for the backing store's point (capture/backing-sync.ts),
   *  without which the trim floor holds every segment. */
  async writeWithReserve (err: unknown, write: () => void): Promise<void> {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC' || !this.reserve?.held) throw err
    const inLock = this.external ? <T>(fn: () => T) => this.external!.exclusive(fn) : async <T>(fn: () => T) => fn()
    await inLock(() => {
      if (!this.reserve!.release()) throw err
      try {
        write()
        this.trimSync()
      } finally {
        this.reserve!.keep() // from what the trim gave back (or, failed, what it had)
      }
    })
  }

  /** Batches holding sequences >= fromSeq, in order, up to what is appended
   *  now. Streams each segment in chunks: memory stays at one batch.
   *  `buffers`: read into these, and each payload is lent (read-buffers.ts):
   *  whoever keeps one past its next step holds it. */
  async * read (fromSeq: Seq, buffers?: ReadBuffers): AsyncGenerator<JournalEntry> {
    const segs = this.opts.readOnly ? await listSegments(this.dir) : [...this.segments]
    const end = this.nextSeq
    let start = 0
    for (let i = 0; i < segs.length; i++) if (segs[i].first <= fromSeq) start = i
    let expect = -1
    for (let i = start; i < segs.length; i++) {
      // Read-only opens leave a torn tail in place: stop before it, or a CRC
      // mismatch there would throw instead of ending the good prefix. Others
      // stop where the frames appended or followed end: past it, in the
      // segment being written, the native core's frame under way read as a
      // short one, and the scan past damage read the whole segment (up to
      // 64 MiB at once, in a sender that caught up with the writer).
      const limit = this.opts.readOnly ? (this.recovery?.segment === segs[i].path ? this.recovery.offset : Infinity) : segs[i].bytes
      const holes: SegmentHole[] = []
      const from = i === start ? frameMarkAt(segs[i], fromSeq) : 0
      for await (const e of readSegment(segs[i].path, limit, holes, from, buffers)) {
        const { seq, records } = e.batch
        if (seq >= end) return
        if (expect >= 0 && seq < expect) continue // a stale frame past damage
        if (expect >= 0 && seq !== expect) {
          // A hole: name it and go on with the valid batches after it.
          // Readers that need every sequence see the jump (sender: JOURNAL_GAP).
          const hole = [...holes].reverse().find(h => h.resumeAt !== null) // the one just before this batch
          await this.noteDamage({
            file: segs[i].path, offset: hole?.offset ?? null, reason: hole?.reason ?? 'sequences missing before this segment (one deleted or cut short)',
            fromSeq: expect, toSeq: seq - 1
          })
        }
        expect = seq + records.length
        if (expect - 1 >= fromSeq) yield e
      }
    }
  }

  async close (): Promise<void> {
    await this.sync()
    if (this.fd >= 0) this.closeFile()
    await this.lock?.release()
    this.lock = null
  }
}

const preallocBytes = 256 * 1024
const preallocLowBytes = 64 * 1024
const preallocZeros = Buffer.alloc(64 * 1024)
