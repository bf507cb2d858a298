// Restating: journalling the *current* state of parts of the volumes, as
// 'state', 'write' and 'setxattr' records, so that whatever a copy held
// there, applying them makes it equal to the backing store. Used after an
// unclean stop (the activity log's hot parts), and by resync (the parts a
// disconnected or overflowed pair changed, or everything).
//
// Each step reads the backing store and emits its records synchronously,
// in one turn of the event loop, so no FUSE operation can fall between the
// read and the record: a change made after a step is journalled after it.
// Between steps the caller may yield, so mounts keep serving.
// Backing paths can be longer than PATH_MAX (the core works with *at()
// calls): every call takes them through withPathSync.
import fs from 'node:fs'
import { join } from 'node:path'
import type { Record } from '../core/records.js'
import { activityRegionBytes, recordDataBytesMax } from '../core/limits.js'
import type { HotMark } from './activity-log.js'
import { withPathSync } from '../volume/long-path.js'
import { nameFromBytes } from '../core/names.js'

export interface RestateSource {
  /** Backing path of a volume-relative path, or null for an unknown volume. */
  backing (vol: number, rel: string): string | null
  /** Extended attributes of a backing path (name → value). */
  xattrs (abs: string | Buffer): Array<[string, Buffer]>
}

export type Emit = (r: Record) => void
/** One step; returns the bytes of data it emitted. */
export type Step = () => number

/** One round of steps under the capture's group lock: up to 16 steps or
 *  `bytes` of data, so that mounts keep serving between rounds. True once
 *  the steps are all done. */
export function stepRound (capture: { exclusive<T> (fn: () => T): Promise<T> }, it: Iterator<Step>, bytes: number): Promise<boolean> {
  return capture.exclusive(() => {
    let sent = 0
    for (let n = 0; n < 16 && sent < bytes; n++) {
      const next = it.next()
      if (next.done) return true
      sent += next.value()
    }
    return false
  })
}

const order = { path: 0, meta: 1, region: 2 } as const

/** Marks in the order they are restated: whole paths first, then metadata, then regions. */
export function sortMarks (marks: HotMark[]): HotMark[] {
  return [...marks].sort((a, b) => order[a.kind] - order[b.kind] || a.path.localeCompare(b.path) || a.region - b.region)
}

/** Steps that restate `marks`, in sortMarks' order. */
export function * restateSteps (marks: HotMark[], src: RestateSource, emit: Emit): Generator<Step> {
  const sorted = sortMarks(marks)
  for (const m of sorted) {
    const abs = src.backing(m.vol, m.path)
    if (abs === null) continue
    if (m.kind === 'region') {
      const start = m.region * activityRegionBytes
      yield () => restateBytes(m.vol, m.path, abs, start, start + activityRegionBytes, emit)
    } else {
      yield * pathSteps(m.vol, m.path, abs, m.kind === 'path', src, emit)
    }
  }
}

/** Steps for one path: its state, its xattrs, and with `whole` its content
 *  (a file) or its subtree (a directory). */
export function * pathSteps (vol: number, path: string, abs: string, whole: boolean, src: RestateSource, emit: Emit): Generator<Step> {
  let st: fs.Stats | null = null
  let children: string[] = []
  yield () => {
    st = lstatOrNull(abs)
    emitState(vol, path, abs, st, whole, src, emit)
    if (st?.isDirectory() && whole) children = readNames(abs)
    return 0
  }
  const s = st as fs.Stats | null
  if (!s || !whole) return
  if (s.isFile()) {
    for (let off = 0; off < s.size; off += recordDataBytesMax) {
      const start = off
      yield () => restateBytes(vol, path, abs, start, start + recordDataBytesMax, emit)
    }
  } else if (s.isDirectory()) {
    for (const name of children) yield * pathSteps(vol, path === '' ? name : `${path}/${name}`, join(abs, name), true, src, emit)
  }
}

export function emitState (vol: number, path: string, abs: string, st: fs.Stats | null, whole: boolean, src: RestateSource, emit: Emit): void {
  const base = { kind: 'state' as const, vol, path, mode: 0, uid: 0, gid: 0, size: 0, target: '', whole }
  if (!st) return emit({ ...base, type: 'absent' })
  const attrs = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }
  if (st.isSymbolicLink()) return emit({ ...base, ...attrs, type: 'symlink', target: nameFromBytes(withPathSync(abs, p => fs.readlinkSync(p, { encoding: 'buffer' }))) })
  if (st.isDirectory()) emit({ ...base, ...attrs, type: 'dir' })
  else if (st.isFile()) emit({ ...base, ...attrs, type: 'file', size: st.size })
  else return // fifos, sockets: not restated
  for (const [name, value] of withPathSync(abs, p => src.xattrs(p))) emit({ kind: 'setxattr', vol, path, name, value, flags: 0 })
}

/** Emits the file's current bytes in [start, end), clipped to its size. */
export function restateBytes (vol: number, path: string, abs: string, start: number, end: number, emit: Emit): number {
  let fd: number
  try {
    fd = withPathSync(abs, p => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW))
  } catch {
    return 0 // gone since: the operation that removed it is journalled or restated itself
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) return 0
    let sent = 0
    for (let off = start; off < Math.min(end, st.size); off += recordDataBytesMax) {
      const len = Math.min(recordDataBytesMax, Math.min(end, st.size) - off)
      const data = Buffer.allocUnsafe(len)
      const n = fs.readSync(fd, data, 0, len, off)
      if (n <= 0) break
      emit({ kind: 'write', vol, path, off, data: data.subarray(0, n) })
      sent += n
    }
    return sent
  } finally {
    fs.closeSync(fd)
  }
}

/** A directory's entries, sorted, as names (bytes escaped where not UTF-8). */
export function readNames (abs: string): string[] {
  return withPathSync(abs, p => fs.readdirSync(p, { encoding: 'buffer' })).map(nameFromBytes).sort()
}

export function lstatOrNull (abs: string): fs.Stats | null {
  try {
    return withPathSync(abs, p => fs.lstatSync(p))
  } catch {
    return null
  }
}
