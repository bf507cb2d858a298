// Segment files: `<first seq, 20 digits>.seg`, append-only frames. This file
// knows names and how to verify one segment's frames (litestream's
// wal_reader in spirit: check each frame, stop at the first bad one).
import fs, { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { checkFrameAt } from './frame.js'
import { frameHeaderBytes } from '../core/limits.js'
import { decodeBatch } from './codec.js'
import { isReplError, replError } from '../core/errors.js'
import type { Batch } from '../core/records.js'

export const segmentSuffix = '.seg'

export function segmentName (firstSeq: number): string {
  return String(firstSeq).padStart(20, '0') + segmentSuffix
}

/** The first sequence a segment file's name gives, or null for another file. */
function segmentFirstOf (name: string): number | null {
  const m = /^(\d{20})\.seg$/.exec(name)
  return m ? Number(m[1]) : null
}

/** First sequences of the segment files in a state directory, oldest first (no stat). */
export function segmentFirstsSync (dir: string): number[] {
  return fs.readdirSync(dir).map(segmentFirstOf).filter(f => f !== null).sort((a, b) => a - b)
}

export interface SegmentInfo {
  first: number // sequence in the name: the first record it may hold
  path: string
  bytes: number
  /** Where some of its frames begin, about one per MiB of frames appended
   *  or followed in this run (none for what was on disk at the start), so
   *  that a read from a sequence in the middle of the segment starts near
   *  it instead of at byte 0 (frameMarkAt). */
  marks?: FrameMark[]
}

/** The frame of the batch starting at `seq` begins at byte `offset`. */
export interface FrameMark { seq: number, offset: number }

// A sender that fell behind its recent batches reads the rest from the
// journal, and each read began at the segment's byte 0: up to 64 MiB read,
// CRC-checked and decoded before the batch it wanted, and again whenever it
// changed between memory and disk (about 100 MiB per GiB written through an
// async pair, native-notes/performance.md 13).
const frameMarkEveryBytes = 1024 * 1024

/** Notes the frame of a batch appended or followed at `offset` of `seg`. */
export function markFrame (seg: SegmentInfo, seq: number, offset: number): void {
  const marks = seg.marks ??= []
  const last = marks[marks.length - 1]
  if (offset - (last?.offset ?? 0) >= frameMarkEveryBytes) marks.push({ seq, offset })
}

/** Forgets the marks at or past `bytes` (the segment was cut there). */
export function cutMarks (seg: SegmentInfo, bytes: number): void {
  if (seg.marks) seg.marks = seg.marks.filter(m => m.offset < bytes)
}

/** Where to start reading `seg` for the batch holding `seq`: the last mark
 *  of a batch starting at or before it (batches are in order), else 0. */
export function frameMarkAt (seg: SegmentInfo, seq: number): number {
  const marks = seg.marks ?? []
  let lo = 0
  let hi = marks.length // marks[lo..hi) unsearched; the answer is marks[lo - 1]
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (marks[mid].seq <= seq) lo = mid + 1
    else hi = mid
  }
  return lo > 0 ? marks[lo - 1].offset : 0
}

/** Segments in a state directory, oldest first. */
export async function listSegments (dir: string): Promise<SegmentInfo[]> {
  const out: SegmentInfo[] = []
  for (const name of await fsp.readdir(dir)) {
    const first = segmentFirstOf(name)
    if (first === null) continue
    const path = join(dir, name)
    const st = await fsp.stat(path)
    out.push({ first, path, bytes: st.size })
  }
  return out.sort((a, b) => a.first - b.first)
}

export interface ScannedBatch {
  batch: Batch
  payload: Buffer
  offset: number // of the frame header in the file
}

export interface SegmentHole {
  offset: number // of the first bad byte (a frame that fails)
  reason: string
  resumeAt: number | null // next valid frame after it; null: nothing valid follows
  inZeros?: true // in the zeros past the last frame (bytes there that are not zeros)
}

export interface SegmentScan {
  batches: ScannedBatch[] // every valid batch, also those after a hole
  goodBytes: number // length of the verified prefix
  damage: null | { offset: number, reason: string } // first bad frame, if any
  holes: SegmentHole[] // every bad stretch; a last one with resumeAt null is a tail
  zerosAt: number | null // where the zeros past the last frame begin, if the segment has them
}

/** Reads and verifies a whole segment. At a short, oversize, CRC-failing or
 *  undecodable frame it looks for the next valid batch frame: if there is
 *  one, the bad stretch is damage in the middle (a hole) and the scan goes
 *  on from there; if not, what follows is a tail (torn, if the segment is
 *  the newest). */
export async function scanSegment (path: string): Promise<SegmentScan> {
  const buf = await fsp.readFile(path)
  return scanBuffer(buf, path)
}

/** scanSegment of bytes read already; `path` names the segment in errors. */
export function scanBuffer (buf: Buffer, path: string): SegmentScan {
  const batches: ScannedBatch[] = []
  const holes: SegmentHole[] = []
  let goodBytes = -1
  let zerosAt: number | null = null
  let off = 0
  while (off < buf.length) {
    if (isZeroHeader(buf, off)) {
      // The end of the frames: the native core writes zeros ahead of its end
      // (src/native/journal.c, prealloc), and no batch is empty.
      const nonZero = firstNonZero(buf, off)
      if (nonZero === null) { zerosAt = off; break }
      if (goodBytes < 0) goodBytes = off
      const last = batches[batches.length - 1]
      const next = findBatchFrame(buf, nonZero, last ? last.batch.seq + last.batch.records.length : 0, path)
      holes.push({ offset: off, reason: `bytes that are not zeros at byte ${nonZero}, past the zeros that end the frames at byte ${off}`, resumeAt: next, ...(next === null ? { inZeros: true as const } : {}) })
      if (next === null) break
      off = next
      continue
    }
    const f = checkBatchAt(buf, off, path)
    if (!f.ok) {
      if (goodBytes < 0) goodBytes = off
      const last = batches[batches.length - 1]
      const next = findBatchFrame(buf, off + 1, last ? last.batch.seq + last.batch.records.length : 0, path)
      holes.push({ offset: off, reason: f.reason, resumeAt: next })
      if (next === null) break
      off = next
      continue
    }
    batches.push({ batch: f.batch, payload: f.payload, offset: off })
    off = f.end
  }
  const first = holes[0]
  return { batches, goodBytes: goodBytes < 0 ? off : goodBytes, damage: first ? { offset: first.offset, reason: first.reason } : null, holes, zerosAt }
}

/** A frame header of zeros (length 0, CRC 0): where a segment's frames end
 *  when the native core wrote zeros ahead of them. */
export function isZeroHeader (buf: Buffer, off: number): boolean {
  if (buf.length - off < frameHeaderBytes) return false
  for (let i = 0; i < frameHeaderBytes; i++) if (buf[off + i] !== 0) return false
  return true
}

function firstNonZero (buf: Buffer, from: number): number | null {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return i
  return null
}

type BatchCheck = { ok: true, batch: Batch, payload: Buffer, end: number } | { ok: false, reason: string }

/** A whole frame whose batch is of another format version is no damage: it
 *  is the journal of another replfs, refused whole, never cut (cut as damage,
 *  what it held for the secondary would be lost). */
function checkBatchAt (buf: Buffer, off: number, path: string): BatchCheck {
  const f = checkFrameAt(buf, off)
  if (!f.ok) return { ok: false, reason: f.reason }
  try {
    return { ok: true, batch: decodeBatch(f.payload), payload: f.payload, end: f.end }
  } catch (err) {
    if (isReplError(err, 'VERSION_MISMATCH')) {
      throw replError('VERSION_MISMATCH', `${path} at byte ${off}: ${err.message}`,
        'the journal of another replfs version: let the replfs that wrote it drain it to its secondary first, or move the state directory aside and resync')
    }
    return { ok: false, reason: `undecodable: ${(err as Error).message}` }
  }
}

/** The first offset >= from where a valid batch frame starts whose
 *  sequence is at least `minSeq` (a stale copy of an older frame is not a
 *  resume point). Cheap tests first: a batch payload is a CBOR map, so its
 *  first byte is 0xa0-0xbf; only then the CRC of the claimed length. */
function findBatchFrame (buf: Buffer, from: number, minSeq: number, path: string): number | null {
  for (let off = from; off + frameHeaderBytes < buf.length; off++) {
    const lead = buf[off + frameHeaderBytes]
    if (lead < 0xa0 || lead > 0xbf) continue
    const len = buf.readUInt32BE(off)
    if (len < 16 || off + frameHeaderBytes + len > buf.length) continue
    const f = checkBatchAt(buf, off, path)
    if (f.ok && f.batch.seq >= minSeq) return off
  }
  return null
}
