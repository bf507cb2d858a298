// The native core's end mark (src/native/end_mark.h, which says why): the
// last sequence the core appended and the segment it appended to, as this
// boot's page cache holds them. A writable open reads it once and withdraws
// its claim (the core claims afresh when it opens), so that whatever else
// rewrites the journal in between (a secondary's receiver, demote, resolve)
// is never held to a stale claim.
import fs from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { Seq } from '../core/records.js'
import { bootId } from './backing-point.js'

export interface EndMark { segment: Seq, seq: Seq }

export const endMarkFile = 'journal.end'
const markBytes = 64
const magic = Buffer.from('RFSEND01')
const bootBytesMax = 39

/** This boot as the mark holds it (a long stand-in from a test is hashed short). */
export function markBootId (boot = bootId()): string {
  if (boot.length > 0 && Buffer.byteLength(boot) <= bootBytesMax) return boot
  return createHash('sha256').update(boot).digest('hex').slice(0, 32)
}

/** The mark's claim if the core wrote it on this boot (else null: none,
 *  another boot's, or not a mark), withdrawn in place: zeroing it needs no
 *  new block, so this works on a full state directory. */
export function takeEndMark (dir: string): EndMark | null {
  let fd: number
  try {
    fd = fs.openSync(join(dir, endMarkFile), 'r+')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  try {
    const b = Buffer.alloc(markBytes)
    if (fs.readSync(fd, b, 0, markBytes, 0) !== markBytes || !b.subarray(0, 8).equals(magic)) return null
    const boot = b.subarray(8, 48).toString('latin1').replace(/\0+$/, '')
    const mark = { segment: Number(b.readBigUInt64LE(48)), seq: Number(b.readBigUInt64LE(56)) }
    fs.writeSync(fd, Buffer.alloc(16), 0, 16, 48)
    return boot === markBootId() && mark.seq > 0 ? mark : null
  } finally {
    fs.closeSync(fd)
  }
}
