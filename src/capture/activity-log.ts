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
// Marks are appended with write(2) and not fsynced: they must survive the
// process, not the machine; an fsync of a file makes them durable with it
// (journal barrier syncs this file too).
import { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { encodeValue, decodeValue } from '../journal/codec.js'
import { encodeFrame, checkFrameAt } from '../journal/frame.js'
import { activityRegionBytes } from '../core/limits.js'

/** What is hot: a whole path (namespace op: recovery re-sends the path,
 *  recursively), its metadata (size, mode, owner, xattrs), or one region of
 *  a file's content. */
export type HotKind = 'path' | 'meta' | 'region'
export interface HotMark { vol: number, path: string, kind: HotKind, region: number }

const fileName = 'activity.log'
const idleMarksMax = 1024

interface Entry { mark: HotMark, inflight: number, pending: Promise<void> | null }

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
  private fh: fsp.FileHandle | null = null
  private queue: Buffer[] = []
  private flushing: Promise<void> | null = null

  private constructor (readonly path: string) {}

  /** Opens the log; returns it and the marks a previous run left behind. */
  static async open (stateDir: string): Promise<{ log: ActivityLog, leftover: HotMark[] }> {
    const log = new ActivityLog(join(stateDir, fileName))
    const leftover = await readMarks(log.path)
    log.fh = await fsp.open(log.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600)
    return { log, leftover }
  }

  /** Marks parts hot before an op. Resolves at once when all already are;
   *  otherwise after their append. Pair every call with `release`. */
  mark (marks: HotMark[]): Promise<void> | null {
    let fresh: Entry[] | null = null
    let waitFor: Promise<void> | null = null
    for (const m of marks) {
      const k = markKey(m)
      const e = this.entries.get(k)
      if (e) {
        if (e.inflight++ === 0) this.idle--
        if (e.pending) waitFor = e.pending // another op's append of this mark is under way
        continue
      }
      const ne: Entry = { mark: m, inflight: 1, pending: null }
      this.entries.set(k, ne)
      ;(fresh ??= []).push(ne)
      this.queue.push(encodeMark(m))
    }
    if (!fresh) return waitFor
    const written = this.flush()
    const done = written.then(() => { for (const e of fresh!) e.pending = null })
    for (const e of fresh) e.pending = done
    return waitFor ? Promise.all([waitFor, done]).then(() => {}) : done
  }

  release (marks: HotMark[]): void {
    for (const m of marks) {
      const e = this.entries.get(markKey(m))
      if (e && --e.inflight === 0) this.idle++
    }
    if (this.idle > idleMarksMax && !this.flushing) void this.flush()
  }

  /** Forgets everything (after recovery re-journalled the leftovers). */
  async reset (): Promise<void> {
    await this.flushing
    this.entries.clear()
    this.idle = 0
    await this.fh!.truncate(0)
  }

  async sync (): Promise<void> {
    await this.flushing
    await this.fh?.datasync()
  }

  async close (): Promise<void> {
    await this.flushing
    await this.fh?.close()
    this.fh = null
  }

  get hotCount (): number { return this.entries.size - this.idle }

  private flush (): Promise<void> {
    // One append at a time; marks queued meanwhile go in the next one.
    if (!this.flushing) {
      this.flushing = (async () => {
        while (this.queue.length > 0 || this.idle > idleMarksMax) {
          if (this.idle > idleMarksMax) await this.compact()
          const bufs = this.queue.splice(0)
          if (bufs.length) await this.fh!.writev(bufs)
        }
      })().finally(() => { this.flushing = null })
      return this.flushing
    }
    return this.flushing.then(() => this.queue.length ? this.flush() : undefined)
  }

  /** Rewrites the log with the marks in flight only, atomically. */
  private async compact (): Promise<void> {
    for (const [k, e] of this.entries) if (e.inflight === 0) this.entries.delete(k)
    this.idle = 0
    const frames = [...this.entries.values()].map(e => encodeMark(e.mark))
    this.queue = [] // every queued mark is in `entries`, so in `frames`
    const tmp = this.path + '.tmp'
    await fsp.writeFile(tmp, Buffer.concat(frames), { mode: 0o600 })
    await fsp.rename(tmp, this.path)
    const old = this.fh
    this.fh = await fsp.open(this.path, fsc.O_WRONLY | fsc.O_APPEND, 0o600)
    await old?.close()
  }
}

function encodeMark (m: HotMark): Buffer {
  return encodeFrame(encodeValue([m.vol, m.kind, m.region, m.path]))
}

async function readMarks (path: string): Promise<HotMark[]> {
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
    const [vol, kind, region, path] = v as [number, HotKind, number, string]
    const m = { vol, kind, region, path }
    out.set(markKey(m), m)
  }
  return [...out.values()]
}
