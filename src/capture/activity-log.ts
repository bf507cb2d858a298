// Activity log (DRBD's name for the same idea): before an operation touches
// the backing store, the part of the volume it touches is marked "hot" in a
// small file in the state directory. After a kill -9, the hot parts are
// exactly those where the backing store may hold a change the journal lacks;
// recovery re-journals their current state (see recovery.ts).
//
// A mark costs one small append only the first time a part becomes hot;
// repeated writes to a hot region cost nothing. The file is compacted (hot
// set rewritten with only what is in flight) once it holds too many idle
// marks, so recovery after a crash re-sends little.
//
// Marks are appended with write(2) and never fsynced: they must survive the
// process, not the machine. After a power loss only what an fsync made
// durable counts, and an fsync makes the journal durable up to that point.
import fs, { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { encodeValue, decodeValue } from '../journal/codec.js'
import { encodeFrame, checkFrameAt } from '../journal/frame.js'
import { activityRegionBytes } from '../core/limits.js'
import { nameFromWire, nameToWire } from '../core/names.js'

/** What is hot: a whole path (namespace op: recovery re-sends the path,
 *  recursively), its metadata (size, mode, owner, xattrs), or one region of
 *  a file's content. */
export type HotKind = 'path' | 'meta' | 'region'
export interface HotMark { vol: number, path: string, kind: HotKind, region: number }

export const activityFileName = 'activity.log'
const idleMarksMax = 1024

interface Entry { mark: HotMark, inflight: number }

export function markKey (m: HotMark): string {
  return `${m.vol}\0${m.kind}\0${m.region}\0${m.path}`
}

export function regionsOf (off: number, len: number): number[] {
  const first = Math.floor(off / activityRegionBytes)
  const last = Math.floor((off + Math.max(len, 1) - 1) / activityRegionBytes)
  const out: number[] = []
  for (let r = first; r <= last; r++) out.push(r)
  return out
}

export class ActivityLog {
  private readonly entries = new Map<string, Entry>()
  private idle = 0
  private fd = -1

  private constructor (readonly path: string) {}

  /** Opens the log; returns it and the marks a previous run left behind. */
  static async open (stateDir: string): Promise<{ log: ActivityLog, leftover: HotMark[] }> {
    const log = new ActivityLog(join(stateDir, activityFileName))
    const leftover = await readMarks(log.path)
    log.fd = fs.openSync(log.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600)
    return { log, leftover }
  }

  /** Marks parts hot before an op; pair every call with `release`.
   *  Synchronous: a new mark is one small append (page cache), done before
   *  the op touches the backing store; an already hot part costs a lookup. */
  mark (marks: HotMark[]): void {
    let fresh: Buffer[] | null = null
    for (const m of marks) {
      const k = markKey(m)
      const e = this.entries.get(k)
      if (e) {
        if (e.inflight++ === 0) this.idle--
        continue
      }
      this.entries.set(k, { mark: m, inflight: 1 })
      ;(fresh ??= []).push(encodeMark(m))
    }
    if (fresh) fs.writevSync(this.fd, fresh)
  }

  release (marks: HotMark[]): void {
    for (const m of marks) {
      const e = this.entries.get(markKey(m))
      if (e && --e.inflight === 0) this.idle++
    }
    if (this.idle > idleMarksMax) this.compact()
  }

  /** Forgets everything (after recovery re-journalled the leftovers, or at
   *  a clean stop when nothing is in flight). */
  reset (): void {
    this.entries.clear()
    this.idle = 0
    fs.ftruncateSync(this.fd, 0)
  }

  close (): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }

  /** Rewrites the log with the marks in flight only, atomically. */
  private compact (): void {
    for (const [k, e] of this.entries) if (e.inflight === 0) this.entries.delete(k)
    this.idle = 0
    const tmp = this.path + '.tmp'
    fs.writeFileSync(tmp, Buffer.concat([...this.entries.values()].map(e => encodeMark(e.mark))), { mode: 0o600 })
    fs.renameSync(tmp, this.path)
    fs.closeSync(this.fd)
    this.fd = fs.openSync(this.path, fsc.O_WRONLY | fsc.O_APPEND, 0o600)
  }
}

function encodeMark (m: HotMark): Buffer {
  return encodeFrame(encodeValue([m.vol, m.kind, m.region, nameToWire(m.path)])) // a name not UTF-8 as its bytes
}

/** The marks in an activity log file (a torn last frame ends it). */
export async function readMarks (path: string): Promise<HotMark[]> {
  let buf: Buffer
  try {
    buf = await fsp.readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out = new Map<string, HotMark>()
  let off = 0
  while (off < buf.length) {
    const f = checkFrameAt(buf, off)
    if (!f.ok) break // torn tail: the op it announced never started
    off = f.end
    const v = decodeValue(f.payload)
    if (!Array.isArray(v) || v.length !== 4) continue
    const [vol, kind, region, path] = v as [number, HotKind, number, unknown]
    if (typeof path !== 'string' && !(path instanceof Uint8Array)) continue
    const m = { vol, kind, region, path: nameFromWire(path) }
    out.set(markKey(m), m)
  }
  return [...out.values()]
}
