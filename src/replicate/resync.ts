// Resync: bring a secondary that missed history (a new or stale copy, or a
// pair whose journal overflowed in `track` mode) to the primary's content
// while applications keep writing. It journals restating records (capture/
// restate.ts), which flow to the secondary like any batch:
//
//   full:    every path, each file compared block by block with the
//            secondary's manifest, so identical blocks are not sent again;
//   partial: exactly the dirty set's paths, metadata and byte ranges.
//
// Then, until none are left, it restates whole every path an application
// renamed, created or removed meanwhile: the secondary skips operations on
// paths the resync has not rebuilt yet, and this pass rebuilds them.
import fs from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { Record } from '../core/records.js'
import type { VolumeSpec } from '../core/config.js'
import type { CaptureApi } from '../capture/capture.js'
import type { HotMark } from '../capture/activity-log.js'
import type { ExtentMap } from '../capture/extent-map.js'
import { withPathSync } from '../volume/long-path.js'
import { emitState, stepRound, lstatOrNull, pathSteps, readNames, restateBytes, restateSteps, type RestateSource, type Step } from '../capture/restate.js'
import { syncBlockBytes, type ManifestEntry } from './messages.js'
import type { ChangedPath } from './divergence.js'

export interface ResyncProgress {
  kind: 'full' | 'partial'
  phase: 'manifest' | 'walk' | 'touched' | 'done'
  bytesDone: number
  bytesTotal: number
  bytesSent: number
  startedMs: number
  rateBytesPerSec: number
  etaSec: number | null
}

export type Manifest = Map<number, Map<string, ManifestEntry>>

const namespaceKinds = new Set<Record['kind']>(['create', 'mkdir', 'mknod', 'symlink', 'unlink', 'rmdir', 'rename', 'link', 'state'])

export function blockSum (data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest().subarray(0, 16)
}

export class Resync {
  readonly progress: ResyncProgress
  private readonly touched = new Map<string, { vol: number, path: string }>()
  private stopped = false
  private emitting = false
  private readonly observer = (r: Record) => {
    if (this.emitting || !namespaceKinds.has(r.kind)) return // our own records are not an application's
    this.touch(r.vol, r.path)
    if (r.kind === 'rename' || r.kind === 'link') this.touch(r.vol, r.to)
  }

  constructor (private readonly capture: CaptureApi, private readonly volumes: VolumeSpec[], private readonly src: RestateSource,
    kind: 'full' | 'partial', private readonly pause: () => Promise<void> | null) {
    this.progress = { kind, phase: kind === 'full' ? 'manifest' : 'walk', bytesDone: 0, bytesTotal: 0, bytesSent: 0, startedMs: Date.now(), rateBytesPerSec: 0, etaSec: null }
    capture.observers.add(this.observer)
  }

  stop (): void {
    this.stopped = true
    this.capture.observers.delete(this.observer)
  }

  /** Full: walk every volume against the secondary's manifest. */
  async full (manifest: Manifest): Promise<boolean> {
    this.progress.phase = 'walk'
    this.progress.bytesTotal = this.volumes.reduce((n, v) => n + treeBytes(v), 0)
    for (const v of this.volumes) {
      const theirs = manifest.get(v.num) ?? new Map<string, ManifestEntry>()
      const children = new Map<string, string[]>() // the secondary's directories' entries
      for (const p of theirs.keys()) {
        if (p === '') continue
        const slash = p.lastIndexOf('/')
        const parent = slash < 0 ? '' : p.slice(0, slash)
        const list = children.get(parent)
        if (list) list.push(p)
        else children.set(parent, [p])
      }
      const steps = v.kind === 'image'
        ? this.compareBlocks(v.num, '', v.path, theirs.get(''))
        : this.walk(v.num, '', v.path, theirs, children)
      if (!await this.run(steps)) return false
    }
    return this.finish()
  }

  /** Partial: the dirty set's marks and byte ranges. */
  async partial (marks: HotMark[], extents: ExtentMap): Promise<boolean> {
    let total = 0
    for (const e of extents.entries()) for (const r of e.ranges) total += r.end - r.start
    this.progress.bytesTotal = total
    if (!await this.run(restateSteps(marks, this.src, this.emit))) return false
    const ranges = [...extents.entries()]
    const steps = function * (this: Resync): Generator<Step> {
      for (const e of ranges) {
        const abs = this.src.backing(e.vol, e.path)
        if (abs === null) continue
        // One step per block, not per range: a range can be the whole file,
        // and run() paces the journal only between steps.
        for (const r of e.ranges) {
          for (let start = r.start; start < r.end; start += syncBlockBytes) {
            const end = Math.min(r.end, start + syncBlockBytes)
            yield () => { const n = restateBytes(e.vol, e.path, abs, start, end, this.emit); this.progress.bytesDone += end - start; return n }
          }
        }
      }
    }.call(this)
    if (!await this.run(steps)) return false
    return this.finish()
  }

  /** After a split brain's resolve: the paths either side changed since
   *  the common point, restated from this side (see divergence.ts
   *  ChangedPath); image volumes by their byte ranges only. */
  async paths (changed: ChangedPath[]): Promise<boolean> {
    let total = 0
    for (const c of changed) for (const [s, e] of c.ranges) total += e - s
    this.progress.bytesTotal = total
    const steps = function * (this: Resync): Generator<Step> {
      for (const c of changed) {
        const v = this.volumes[c.vol]
        const abs = this.src.backing(c.vol, c.path)
        if (!v || abs === null) continue
        if (v.kind === 'dir') {
          yield * pathSteps(c.vol, c.path, abs, c.whole, this.src, this.emit)
          if (c.xattrs?.length) {
            // A restate sets the survivor's xattrs; names only the copy has go.
            yield () => {
              if (!lstatOrNull(abs)) return 0 // absent here: the restate removed it whole
              const have = new Set(this.src.xattrs(abs).map(([n]) => n))
              for (const name of c.xattrs!) if (!have.has(name)) this.emit({ kind: 'removexattr', vol: c.vol, path: c.path, name })
              return 0
            }
          }
          if (c.whole) continue
        }
        for (const [start0, end0] of c.ranges) {
          for (let start = start0; start < end0; start += syncBlockBytes) {
            const end = Math.min(end0, start + syncBlockBytes)
            yield () => { const n = restateBytes(c.vol, c.path, abs, start, end, this.emit); this.progress.bytesDone += end - start; return n }
          }
        }
      }
    }.call(this)
    if (!await this.run(steps)) return false
    return this.finish()
  }

  private readonly emit = (r: Record) => {
    if (r.kind === 'write') this.progress.bytesSent += r.data.length
    this.emitting = true
    try {
      this.capture.record(r, [], () => {})
    } finally {
      this.emitting = false
    }
  }

  private touch (vol: number, path: string): void {
    this.touched.set(`${vol}\0${path}`, { vol, path })
  }

  /** Restates touched paths whole until an application leaves none. */
  private async finish (): Promise<boolean> {
    this.progress.phase = 'touched'
    // Observers hear of application records as the journal is followed:
    // catch up first, or a path touched just now would be missed.
    await this.capture.barrier()
    while (this.touched.size > 0 && !this.stopped) {
      const batch = [...this.touched.values()]
      this.touched.clear()
      for (const t of batch) {
        const abs = this.src.backing(t.vol, t.path)
        if (abs !== null && !await this.run(pathSteps(t.vol, t.path, abs, true, this.src, this.emit))) return false
      }
      await this.capture.barrier()
    }
    this.stop()
    if (this.progress.phase === 'touched') this.progress.phase = 'done'
    this.progress.etaSec = 0
    return true
  }

  /** Runs steps, yielding to the event loop between them (mounts keep
   *  serving) and waiting while the journal is too full. A handful of steps
   *  at a time run `exclusive`ly: no application operation falls between a
   *  step's read of the backing store and its records. */
  private async run (steps: Iterable<Step>): Promise<boolean> {
    const it = steps[Symbol.iterator]()
    for (;;) {
      if (this.stopped) return false
      // Also yield after every block's worth of data: the journal's size
      // (what pause() looks at) grows only when the group commit runs, on
      // the next turn; 16 steps of 1 MiB blocks between looks overflowed
      // an 8 MiB journal during an initial sync.
      if (await stepRound(this.capture, it, syncBlockBytes)) break
      await new Promise(resolve => setImmediate(resolve))
      const p = this.pause()
      if (p) await p
      this.updateRate()
    }
    this.updateRate()
    return !this.stopped
  }

  private updateRate (): void {
    const p = this.progress
    const secs = (Date.now() - p.startedMs) / 1000
    p.rateBytesPerSec = secs > 0 ? Math.round(p.bytesDone / secs) : 0
    p.etaSec = p.rateBytesPerSec > 0 ? Math.max(0, Math.round((p.bytesTotal - p.bytesDone) / p.rateBytesPerSec)) : null
  }

  /** A directory against the manifest: restate it, its children, and remove
   *  what the secondary has and the primary does not. */
  private * walk (vol: number, path: string, abs: string, theirs: Map<string, ManifestEntry>, children: Map<string, string[]>): Generator<Step> {
    let st: fs.Stats | null = null
    let names: string[] = []
    yield () => {
      st = lstatOrNull(abs)
      emitState(vol, path, abs, st, false, this.src, this.emit)
      if (st?.isDirectory()) names = readNames(abs)
      return 0
    }
    const s = st as fs.Stats | null
    if (!s) return
    if (s.isFile()) {
      yield * this.compareBlocks(vol, path, abs, theirs.get(path))
      return
    }
    if (!s.isDirectory()) return
    const mine = new Set(names)
    const prefix = path === '' ? '' : path + '/'
    for (const p of children.get(path) ?? []) {
      // What only the secondary has goes (state 'absent' removes a subtree).
      if (!mine.has(p.slice(prefix.length))) {
        yield () => { this.emit({ kind: 'state', vol, path: p, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false }); return 0 }
      }
    }
    for (const name of names) yield * this.walk(vol, prefix + name, join(abs, name), theirs, children)
  }

  /** A file's blocks: each read, summed and compared in one step; sent only
   *  when the secondary's block differs (or it has no such file). */
  private * compareBlocks (vol: number, path: string, abs: string, theirs: ManifestEntry | undefined): Generator<Step> {
    const size = lstatOrNull(abs)?.size ?? 0
    for (let off = 0; off < size; off += syncBlockBytes) {
      const i = off / syncBlockBytes
      yield () => {
        let fd: number
        try { fd = withPathSync(abs, p => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)) } catch { return 0 }
        try {
          const data = Buffer.allocUnsafe(syncBlockBytes)
          const n = fs.readSync(fd, data, 0, syncBlockBytes, off)
          const block = data.subarray(0, n)
          this.progress.bytesDone += n
          const same = theirs?.type === 'file' && theirs.sums[i] !== undefined && Buffer.from(theirs.sums[i]).equals(blockSum(block))
          if (n > 0 && !same) this.emit({ kind: 'write', vol, path, off, data: block })
          return same ? 0 : n
        } finally {
          fs.closeSync(fd)
        }
      }
    }
  }
}

/** Bytes of regular files under a volume (progress total for a full sync). */
function treeBytes (v: VolumeSpec): number {
  if (v.kind === 'image') return v.size
  let n = 0
  const walk = (d: string) => {
    let entries: fs.Dirent[]
    try { entries = withPathSync(d, p => fs.readdirSync(p, { withFileTypes: true })) } catch { return }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name))
      else if (e.isFile()) n += lstatOrNull(join(d, e.name))?.size ?? 0
    }
  }
  walk(v.path)
  return n
}
