// The secondary's applied cursor (file `applied` in its state directory):
// the last sequence applied to the copy and whether the copy is consistent,
// rewritten in place after every applied record but writes, which get it
// once after a run of them: a write applied again lands the same bytes
// (replicate/receiver.ts).
// 13 bytes: u64 big endian sequence, a flag (0 consistent, 1 a resync must
// finish), CRC32C of those 9. A cursor that fails its check is damage: the
// copy then counts as applied only through the checkpoint's appliedSeq and
// as inconsistent (a full compare), never re-applied from a wrong place.
// (A 9-byte cursor, written before the check existed, is read as it is.)
import fs from 'node:fs'
import { join } from 'node:path'
import { crc32c } from './frame.js'
import type { Seq } from '../core/records.js'
import { writeFileAtomicSync } from './checkpoint.js'

export const cursorFile = 'applied'
export const cursorBytes = 13

export interface AppliedCursor { applied: Seq, consistent: boolean }

export function encodeCursor (c: AppliedCursor): Buffer {
  const buf = Buffer.alloc(cursorBytes)
  buf.writeBigUInt64BE(BigInt(c.applied), 0)
  buf[8] = c.consistent ? 0 : 1
  buf.writeUInt32BE(crc32c(buf.subarray(0, 9)), 9)
  return buf
}

/** The cursor in `buf` (the bytes read, `len` of them); null for none yet
 *  (an empty file); a string saying what is wrong when it is damaged. */
export function decodeCursor (buf: Buffer, len: number): AppliedCursor | null | string {
  if (len === 0) return null
  if (len !== 9 && len !== cursorBytes) return `${len} bytes, not ${cursorBytes}`
  const applied = buf.readBigUInt64BE(0)
  if (buf[8] > 1) return `flag byte ${buf[8]}`
  if (len === cursorBytes && buf.readUInt32BE(9) !== crc32c(buf.subarray(0, 9))) return 'checksum mismatch'
  if (applied > BigInt(Number.MAX_SAFE_INTEGER)) return `sequence ${applied} out of range`
  return { applied: Number(applied), consistent: buf[8] === 0 }
}

/** Reads the cursor through an open fd (see decodeCursor). */
export function readCursorFd (fd: number): AppliedCursor | null | string {
  const buf = Buffer.alloc(cursorBytes + 1)
  const len = fs.readSync(fd, buf, 0, buf.length, 0)
  return decodeCursor(buf, len)
}

/** Rewrites the cursor in place (no fsync: the caller's sync points). */
export function writeCursorFd (fd: number, c: AppliedCursor): void {
  fs.writeSync(fd, encodeCursor(c), 0, cursorBytes, 0)
}

/** Writes the cursor of a state directory durably (role changes, resolve). */
export function writeAppliedCursor (state: string, applied: Seq, consistent: boolean): void {
  const fd = fs.openSync(join(state, cursorFile), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
  try {
    writeCursorFd(fd, { applied, consistent })
    fs.ftruncateSync(fd, cursorBytes)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** The boot the cursor moves on (file `applied.boot`): written durably when
 *  a secondary starts, removed at its clean stop once the copy is flushed.
 *  The cursor and the copy's files are rewritten in the page cache, which
 *  writes them back in no order: found with another boot's id at a start,
 *  the machine went down under a running secondary (a power loss, a kernel
 *  crash), and the cursor may stand past writes the copy lost. */
export const cursorBootFile = 'applied.boot'

/** The boot a secondary ran on and did not stop cleanly (null: none). */
export function readCursorBoot (state: string): string | null {
  try { return fs.readFileSync(join(state, cursorBootFile), 'latin1') } catch { return null }
}

export function writeCursorBoot (state: string, boot: string): void {
  writeFileAtomicSync(join(state, cursorBootFile), Buffer.from(boot, 'latin1'))
}

export function clearCursorBoot (state: string): void {
  fs.rmSync(join(state, cursorBootFile), { force: true })
}
