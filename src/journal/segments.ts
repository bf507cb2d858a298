// Segment files: `<first seq, 20 digits>.seg`, append-only frames. This file
// knows names and how to verify one segment's frames (litestream's
// wal_reader in spirit: check each frame, stop at the first bad one).
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { checkFrameAt } from './frame.js'
import { decodeBatch } from './codec.js'
import type { Batch } from '../core/records.js'

export const segmentSuffix = '.seg'

export function segmentName (firstSeq: number): string {
  return String(firstSeq).padStart(20, '0') + segmentSuffix
}

export interface SegmentInfo {
  first: number // sequence in the name: the first record it may hold
  path: string
  bytes: number
}

/** Segments in a state directory, oldest first. */
export async function listSegments (dir: string): Promise<SegmentInfo[]> {
  const out: SegmentInfo[] = []
  for (const name of await fsp.readdir(dir)) {
    const m = /^(\d{20})\.seg$/.exec(name)
    if (!m) continue
    const path = join(dir, name)
    const st = await fsp.stat(path)
    out.push({ first: Number(m[1]), path, bytes: st.size })
  }
  return out.sort((a, b) => a.first - b.first)
}

export interface ScannedBatch {
  batch: Batch
  payload: Buffer
  offset: number // of the frame header in the file
}

export interface SegmentScan {
  batches: ScannedBatch[]
  goodBytes: number // length of the verified prefix
  damage: null | { offset: number, reason: string } // first bad frame, if any
}

/** Reads and verifies a whole segment. Stops at the first short, oversize,
 *  CRC-failing or undecodable frame: what follows it is a torn tail. */
export async function scanSegment (path: string): Promise<SegmentScan> {
  const buf = await fsp.readFile(path)
  return scanBuffer(buf)
}

export function scanBuffer (buf: Buffer): SegmentScan {
  const batches: ScannedBatch[] = []
  let off = 0
  while (off < buf.length) {
    const f = checkFrameAt(buf, off)
    if (!f.ok) return { batches, goodBytes: off, damage: { offset: off, reason: f.reason } }
    let batch: Batch
    try {
      batch = decodeBatch(f.payload)
    } catch (err) {
      return { batches, goodBytes: off, damage: { offset: off, reason: `undecodable: ${(err as Error).message}` } }
    }
    batches.push({ batch, payload: f.payload, offset: off })
    off = f.end
  }
  return { batches, goodBytes: off, damage: null }
}
