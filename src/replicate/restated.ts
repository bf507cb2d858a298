// Fast failback (VVR's name): what an old primary, demoted after the other
// side was promoted, holds past the common point, and whether any of it is
// a real difference.
//
// Two kinds of sequences can lie past the point on such a side:
//  - its unshipped writes: journalled while it was the primary, in the
//    generation it shared with the peer (in flight when it died or the
//    link went), never received by the side promoted since;
//  - the recovery of an unclean stop: the activity log's hot parts
//    re-journalled as they are on its backing store (capture/restate.ts).
//    Most hot parts are idle marks (the log is compacted only now and
//    then), so most of these only restate what the peer already holds.
//
// A restate is a no-op on the peer when applying it there would change
// nothing: the same bytes, the same type, mode, owner and size, the same
// xattr values. The old primary sends a digest of its restate records
// (sequence, path, checksums: never the data) in its `state` message; the
// new primary checks each against its own data, only on paths it did not
// change since the point (there its data is no longer what it held at the
// point). All held: the restate is dropped on the old primary and the
// journal resumes, nothing is rolled back. Else, on a side that was
// demoted (STATE/demoted.json, written by `replfs demote`), its writes past
// the point are rolled back from the new primary's data and saved, as
// `resolve --discard-local` does; without a demote it stays a split brain.
//
// Writes made while the old primary knew it had no peer are in a
// generation of their own (sender.ts startAloneGeneration): those are an
// application's work done apart, never rolled back without the operator
// (`resolve --discard-local`).
import fs from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { Record, Seq } from '../core/records.js'
import type { Journal } from '../journal/journal.js'
import { writeFileAtomic } from '../journal/checkpoint.js'
import { lstatOrNull, type RestateSource } from '../capture/restate.js'
import { withPathSync } from '../volume/long-path.js'
import { nameFromBytes } from '../core/names.js'

/** Sequences a recovery re-journalled: [from, to], inclusive. */
export type SeqRange = [Seq, Seq]

export const restatedFile = 'restated.json'
export const demotedFile = 'demoted.json'

/** Kept per side: recoveries past what the peer acknowledged. */
const restatedRangesMax = 16
/** Digest entries sent at most (past it: nothing is taken as held): with
 *  a checksum per 64 KiB of restated data, 1.2 GiB of restate, about 2 MiB
 *  of JSON, well within a state message (reportBytesMax). */
export const digestEntriesMax = 20_000
/** Restated data is compared in pieces of this size: what differs is
 *  rolled back and sent again by the piece, not by the activity log's
 *  1 MiB region. */
export const restateChunkBytes = 64 * 1024

function readJson (path: string): unknown {
  try { return JSON.parse(fs.readFileSync(path, 'utf8')) } catch { return null }
}

/** The restate ranges recorded in `dir` (none when the file is missing or
 *  not one: then no restate is known, and none is taken as held). */
export function readRestated (dir: string): SeqRange[] {
  const v = readJson(join(dir, restatedFile))
  if (!Array.isArray(v)) return []
  return v.filter((r): r is SeqRange => Array.isArray(r) && r.length === 2 && r.every(n => Number.isSafeInteger(n) && n > 0) && r[0] <= r[1])
}

/** A recovery re-journalled sequences from..to; ranges the peer has
 *  acknowledged are forgotten. */
export async function noteRestated (dir: string, from: Seq, to: Seq, acked: Seq): Promise<void> {
  const kept = readRestated(dir).filter(r => r[1] > acked)
  if (to >= from) kept.push([from, to])
  await writeFileAtomic(join(dir, restatedFile), Buffer.from(JSON.stringify(kept.slice(-restatedRangesMax)) + '\n'))
}

export interface Demoted { at: Seq, acked: Seq, time: string }

export function readDemoted (dir: string): Demoted | null {
  const v = readJson(join(dir, demotedFile)) as Partial<Demoted> | null
  return v && typeof v.at === 'number' && typeof v.acked === 'number' ? { at: v.at, acked: v.acked, time: String(v.time) } : null
}

export async function writeDemoted (dir: string, d: Demoted): Promise<void> {
  await writeFileAtomic(join(dir, demotedFile), Buffer.from(JSON.stringify(d) + '\n'))
}

/** The side follows a primary again (or is one): both records are done. */
export function clearFailbackMarks (dir: string): void {
  fs.rmSync(join(dir, demotedFile), { force: true })
  fs.rmSync(join(dir, restatedFile), { force: true })
}

/** One restated record, without its data. */
export type RestateEntry =
  | { seq: Seq, k: 'w', vol: number, path: string, off: number, len: number, h: string }
  | { seq: Seq, k: 's', vol: number, path: string, type: string, mode: number, uid: number, gid: number, size: number, target: string }
  | { seq: Seq, k: 'x', vol: number, path: string, name: string, h: string }

export interface RestateDigest { ranges: SeqRange[], entries: RestateEntry[] }

const sum = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

/** An entry's name in the primary's answer: its sequence, and for data
 *  the offset of its piece. */
export const entryKey = (e: { seq: Seq, k: string, off?: number }): string => e.k === 'w' ? `${e.seq}@${e.off}` : String(e.seq)

/** The pieces of a restated write (bytes [start, end) of its data). */
function * pieces (data: Uint8Array): Generator<[number, number]> {
  for (let at = 0; at < data.length; at += restateChunkBytes) yield [at, Math.min(data.length, at + restateChunkBytes)]
}

/** What is left of a restated record once the parts the primary holds as
 *  they are (`held`, by entryKey) are taken out: the record, pieces of it
 *  (writes), or nothing. */
export function unheldParts (r: Record, seq: Seq, held: ReadonlySet<string>): Record[] {
  if (r.kind !== 'write') return held.has(String(seq)) ? [] : [r]
  const out: Record[] = []
  for (const [a, b] of pieces(r.data)) if (!held.has(`${seq}@${r.off + a}`)) out.push({ ...r, off: r.off + a, data: r.data.subarray(a, b) })
  return out
}

function entriesOf (r: Record, seq: Seq): RestateEntry[] | null {
  switch (r.kind) {
    case 'write': return [...pieces(r.data)].map(([a, b]) => ({ seq, k: 'w' as const, vol: r.vol, path: r.path, off: r.off + a, len: b - a, h: sum(r.data.subarray(a, b)) }))
    case 'state': return [{ seq, k: 's', vol: r.vol, path: r.path, type: r.type, mode: r.mode, uid: r.uid, gid: r.gid, size: r.size, target: r.target }]
    case 'setxattr': return [{ seq, k: 'x', vol: r.vol, path: r.path, name: r.name, h: sum(r.value) }]
    default: return null // a restate emits only these
  }
}

/** The digest of this journal's restate records past `after`; null when
 *  there are none, or they cannot all be read or listed. */
export async function restateDigest (journal: Journal, ranges: SeqRange[], after: Seq): Promise<RestateDigest | null> {
  const past = ranges.filter(r => r[1] > after).map(([a, b]): SeqRange => [Math.max(a, after + 1), b])
  if (past.length === 0) return null
  const entries: RestateEntry[] = []
  for (const [from, to] of past) {
    let expect = from
    try {
      for await (const { batch } of journal.read(from)) {
        for (let i = 0; i < batch.records.length; i++) {
          const seq = batch.seq + i
          if (seq < expect || seq > to) continue
          if (seq !== expect) return null // a hole
          const e = entriesOf(batch.records[i], seq)
          if (!e || entries.length + e.length > digestEntriesMax) return null
          entries.push(...e)
          expect++
        }
        if (expect > to) break
      }
    } catch {
      return null
    }
    if (expect <= to) return null
  }
  return { ranges: past, entries }
}

export function parseDigest (text: string | undefined): RestateDigest | null {
  if (text === undefined) return null
  try {
    const v = JSON.parse(text) as RestateDigest
    if (!Array.isArray(v.ranges) || !Array.isArray(v.entries) || v.entries.length > digestEntriesMax) return null
    for (const e of v.entries) {
      if (typeof e !== 'object' || e === null || !Number.isSafeInteger(e.seq) || !Number.isSafeInteger(e.vol) || typeof e.path !== 'string') return null
      if (!['w', 's', 'x'].includes(e.k)) return null
    }
    return v
  } catch {
    return null
  }
}

/** Every sequence in (from, to] lies in one of `ranges`. */
export function covered (ranges: SeqRange[], from: Seq, to: Seq): boolean {
  let next = from + 1
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    if (a > next) break
    next = Math.max(next, b + 1)
  }
  return next > to
}

/** Whether applying each entry here would change nothing (synchronous: the
 *  caller holds the group lock, so no write falls between the reads).
 *  `image(vol)`: an image volume, whose only state is its size. */
export function heldHere (entries: RestateEntry[], src: RestateSource, image: (vol: number) => boolean): boolean[] {
  return entries.map(e => {
    const abs = src.backing(e.vol, e.path)
    if (abs === null) return false
    try {
      switch (e.k) {
        case 'w': return sameBytes(abs, e.off, e.len, e.h)
        case 's': return sameState(abs, e, image(e.vol))
        case 'x': return withPathSync(abs, p => src.xattrs(p)).some(([name, value]) => name === e.name && sum(value) === e.h)
      }
    } catch {
      return false
    }
    return false
  })
}

function sameBytes (abs: string, off: number, len: number, h: string): boolean {
  const fd = withPathSync(abs, p => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW))
  try {
    const buf = Buffer.alloc(len)
    const n = fs.readSync(fd, buf, 0, len, off)
    return n === len && sum(buf) === h
  } finally {
    fs.closeSync(fd)
  }
}

function sameState (abs: string, e: Extract<RestateEntry, { k: 's' }>, image: boolean): boolean {
  const st = lstatOrNull(abs)
  if (e.type === 'absent') return st === null
  if (!st) return false
  if (image) return e.type === 'file' && st.isFile() && st.size === e.size
  const attrs = (st.mode & 0o7777) === e.mode && st.uid === e.uid && st.gid === e.gid
  if (e.type === 'dir') return st.isDirectory() && attrs
  if (e.type === 'file') return st.isFile() && attrs && st.size === e.size
  if (e.type === 'symlink') return st.isSymbolicLink() && st.uid === e.uid && st.gid === e.gid && nameFromBytes(withPathSync(abs, p => fs.readlinkSync(p, { encoding: 'buffer' }))) === e.target
  return false
}
