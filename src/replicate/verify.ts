// Online verify: compare every volume of the group with the secondary's
// copy while applications keep writing, and optionally repair what differs.
//
// Why no false divergence: each request is read on both sides at one and
// the same sequence. The primary reads its backing store holding the group
// lock (no FUSE mutation in between), notes the last sequence `at`, and
// sends the request before letting the lock go, so the request is on the
// wire ahead of every batch past `at`. The secondary answers exactly when
// it has applied `at` and before it applies `at + 1` (receiver.ts). Both
// answers then describe the same instant of history; a block changed during
// the pass is simply read again, by a later request, at a later sequence.
//
// The walk: per directory volume its tree from the root (entry, names,
// then each child; each file's blocks), per image volume its blocks; then
// the hard-link groups of the primary, each read whole in one request.
// Repair restates exactly what differs through the journal (capture/
// restate.ts, under the group lock: ordered with everything else) and
// verifies those parts again.
import { join } from 'node:path'
import type { Record, Seq } from '../core/records.js'
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import { recordDataBytesMax } from '../core/limits.js'
import { lstatOrNull, readNames, stepRound, type RestateSource } from '../capture/restate.js'
import type { HotMark } from '../capture/activity-log.js'
import type { Message, VerifyAnswer, VerifyItem } from './messages.js'
import { verifyItemsMax, verifyNamesMax } from './messages.js'
import { sumBlocks, VolumeReader } from './verify-read.js'
import { compareEntries, coalesce, differingRanges, linkPartition, type LinkGroups, type Mismatch, type VerifyTask as Task } from './verify-compare.js'
import { repairSteps } from './verify-repair.js'

/** What verify needs of the capture (NativeCapture): the group lock, and
 *  records made by JS (repairs). */
export interface VerifyCapture {
  exclusive<T> (fn: () => T): Promise<T>
  record (r: Record, marks: HotMark[], reply: () => void): Seq
  readonly commit: { readonly lastAssigned: Seq }
}

/** The replication session the requests go over (Replicator.verifyLink). */
export interface VerifyLink {
  send (m: Message): void
  /** Calls `fn` when the session ends; returns the way to stop listening. */
  onEnd (fn: () => void): () => void
}

export interface VerifyOptions {
  blockBytes: number
  repair: boolean
  /** Bytes read per second on each side (0: as fast as it goes). */
  rateBytesPerSec: number
  /** Each mismatch as found (data ranges come merged, in the report). */
  onMismatch?: (m: Mismatch) => void
}

export interface VerifyProgress {
  phase: 'compare' | 'links' | 'repair' | 'recheck' | 'done'
  bytesDone: number
  bytesTotal: number
  entriesDone: number
  mismatches: number
  startedMs: number
  rateBytesPerSec: number
}

export interface VerifyReport {
  clean: boolean // nothing differs (after repair, with --repair)
  found: Mismatch[] // the pass's mismatches
  remaining: Mismatch[] // after repair (the same as found without it)
  repaired: boolean
  bytesCompared: number
  entriesCompared: number
  seconds: number
  fromSeq: Seq
  toSeq: Seq
  blockBytes: number
  skipped: string[] // what could not be compared, and why
}


/** Requests in flight, and the data one request reads on each side. */
const windowRequests = 4
const requestBytes = 4 * 1024 * 1024
const requestItems = 64
const missedMax = 1000
const repairRoundsMax = 3

export class Verifier {
  readonly progress: VerifyProgress
  private readonly reader: VolumeReader
  private readonly waiting = new Map<number, (m: Extract<Message, { t: 'verified' }>) => void>()
  private nextId = 1
  private stopped: Error | null = null
  private missed = 0
  private fromSeq: Seq = 0
  private toSeq: Seq = 0
  private readonly chunkBytes: number
  private readonly skipped: string[] = []

  constructor (private readonly capture: VerifyCapture, private readonly volumes: VolumeSpec[], private readonly src: RestateSource,
    private readonly link: VerifyLink, private readonly o: VerifyOptions) {
    this.reader = new VolumeReader(volumes)
    this.chunkBytes = Math.max(1, Math.floor(1024 * 1024 / o.blockBytes)) * o.blockBytes
    this.progress = { phase: 'compare', bytesDone: 0, bytesTotal: 0, entriesDone: 0, mismatches: 0, startedMs: Date.now(), rateBytesPerSec: 0 }
  }

  /** The secondary's answer (Replicator.verifyListeners). */
  readonly onAnswer = (m: Extract<Message, { t: 'verified' }>): void => {
    const w = this.waiting.get(m.id)
    if (!w) return
    this.waiting.delete(m.id)
    w(m)
  }

  stop (why: Error): void {
    this.stopped ??= why
    for (const w of this.waiting.values()) w({ t: 'verified', id: 0, at: 0, missed: true, consistent: true, answers: [] })
    this.waiting.clear()
  }

  async run (): Promise<VerifyReport> {
    const off = this.link.onEnd(() => this.stop(replError('PEER_ERROR', 'the connection to the secondary ended during the verify')))
    try {
      return await this.runPasses()
    } finally {
      off()
    }
  }

  private async runPasses (): Promise<VerifyReport> {
    const started = Date.now()
    this.fromSeq = this.capture.commit.lastAssigned
    this.progress.bytesTotal = this.volumes.reduce((n, v) => n + (v.kind === 'image' ? v.size : treeBytes(v.path)), 0)
    const roots: Task[] = this.volumes.map(v => v.kind === 'image'
      ? { kind: 'blocks', vol: v.num, path: '', off: 0, len: v.size }
      : { kind: 'entry', vol: v.num, path: '', deep: true })
    let groups: LinkGroups = new Map()
    const found = await this.passWithLinks(roots, groups)
    let remaining = found
    // A repair can uncover more to repair: a directory restated whole
    // brings back its files, not their hard links to names elsewhere, which
    // the next round's check of the link groups finds.
    for (let round = 0; this.o.repair && remaining.length > 0 && round < repairRoundsMax; round++) {
      this.progress.phase = 'repair'
      const recheck = await this.repair(remaining, groups)
      this.progress.phase = 'recheck'
      groups = new Map()
      remaining = await this.passWithLinks(recheck, groups)
    }
    this.progress.phase = 'done'
    const order = (a: Mismatch, b: Mismatch) => a.vol - b.vol || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)
    found.sort(order)
    remaining.sort(order)
    return {
      clean: remaining.length === 0, found, remaining, repaired: this.o.repair && found.length > 0,
      bytesCompared: this.progress.bytesDone, entriesCompared: this.progress.entriesDone,
      seconds: (Date.now() - started) / 1000, fromSeq: this.fromSeq, toSeq: this.toSeq, blockBytes: this.o.blockBytes, skipped: this.skipped
    }
  }

  // ---- one pass over a set of tasks ---------------------------------------

  /** A pass, then a check of the hard-link groups it met. */
  private async passWithLinks (tasks: Task[], groups: LinkGroups): Promise<Mismatch[]> {
    const found = await this.pass(tasks, groups)
    const phase = this.progress.phase
    if (phase === 'compare') this.progress.phase = 'links'
    const linkTasks: Task[] = [...groups.values()].filter(g => g.paths.length > 1).map(g => ({ kind: 'links', vol: g.vol, paths: g.paths.slice(0, verifyItemsMax) }))
    found.push(...await this.pass(linkTasks, null))
    this.progress.phase = phase
    return found
  }

  /** Runs `tasks` and what they lead to (a directory's children, a file's
   *  blocks); returns the mismatches. `groups` collects the primary's
   *  hard-link groups (by device:inode). */
  private async pass (tasks: Task[], groups: LinkGroups | null): Promise<Mismatch[]> {
    const stack = [...tasks].reverse() // depth first: memory follows the tree's depth, not its width
    const out: Mismatch[] = []
    const data = new Map<string, Mismatch>() // data ranges per file, merged
    const pending = new Set<Promise<void>>()
    const noteData = (vol: number, path: string, ranges: Array<[number, number]>) => {
      const key = `${vol}\0${path}`
      let m = data.get(key)
      if (!m) {
        data.set(key, m = { vol, volume: this.volumes[vol].name, path, kind: 'data', detail: '', ranges: [] })
        out.push(m)
        this.progress.mismatches++
      }
      m.ranges = coalesce([...m.ranges!, ...ranges])
    }
    while (stack.length > 0 || pending.size > 0) {
      if (this.stopped) throw this.stopped
      if (stack.length > 0 && pending.size < windowRequests) {
        const batch = this.take(stack)
        await this.pace()
        const p: Promise<void> = this.request(batch).then(a => {
          if (this.stopped) return
          if (!a.consistent) throw replError('PEER_ERROR', 'the secondary\'s copy is not consistent (a resync is running or was cut short, or its apply is blocked): nothing to verify against')
          if (a.missed) {
            if (++this.missed > missedMax) throw replError('PEER_ERROR', `the secondary answered ${missedMax} requests past their sequence`)
            stack.push(...[...batch.tasks].reverse())
            return
          }
          this.absorb(batch, a, stack, out, noteData, groups)
        }).catch(err => this.stop(err)).finally(() => pending.delete(p))
        pending.add(p)
        continue
      }
      await Promise.race(pending)
    }
    if (this.stopped) throw this.stopped
    for (const m of out) if (m.kind === 'data') m.detail = `${m.ranges!.reduce((n, [a, b]) => n + b - a, 0)} bytes in ${m.ranges!.length} ranges`
    return out
  }

  /** The next request's tasks: up to requestItems items and requestBytes of data. */
  private take (stack: Task[]): { tasks: Task[], items: VerifyItem[] } {
    const tasks: Task[] = []
    const items: VerifyItem[] = []
    let bytes = 0
    let lists = 0
    const block = this.o.blockBytes
    while (stack.length > 0 && items.length < requestItems && bytes < requestBytes) {
      const t = stack[stack.length - 1]
      if (t.kind === 'links') {
        if (items.length > 0) break // alone: its answer's link indexes cover just its paths
        stack.pop()
        tasks.push(t)
        for (const path of t.paths) items.push({ vol: t.vol, path, entry: true, list: false, off: 0, len: 0, block })
        break
      }
      if (t.kind === 'entry' && t.deep && ++lists > 2) break // an answer's names stay well inside a frame
      stack.pop()
      if (t.kind === 'blocks' && t.len > this.chunkBytes) {
        // Split: the rest stays on the stack, the first chunk goes now.
        stack.push({ ...t, off: t.off + this.chunkBytes, len: t.len - this.chunkBytes })
        const first = { ...t, len: this.chunkBytes }
        tasks.push(first)
        items.push({ vol: t.vol, path: t.path, entry: false, list: false, off: first.off, len: first.len, block })
        bytes += first.len
        continue
      }
      tasks.push(t)
      if (t.kind === 'entry') items.push({ vol: t.vol, path: t.path, entry: true, list: t.deep, off: 0, len: 0, block })
      else { items.push({ vol: t.vol, path: t.path, entry: false, list: false, off: t.off, len: t.len, block }); bytes += t.len }
    }
    return { tasks, items }
  }

  /** Reads this side and sends the request, both under the group lock. */
  private async request (b: { tasks: Task[], items: VerifyItem[], mine?: VerifyAnswer[], inodes?: Array<string | null> }): Promise<Extract<Message, { t: 'verified' }>> {
    const id = this.nextId++
    const answered = new Promise<Extract<Message, { t: 'verified' }>>(resolve => this.waiting.set(id, resolve))
    if (this.stopped) throw this.stopped
    const inodes: Array<string | null> = []
    const data: Array<Buffer | null> = []
    // Under the lock only the reads (copies from the page cache, mostly);
    // the checksums after, so application writes wait as little as can be.
    const { at, mine } = await this.capture.exclusive(() => {
      const at = this.capture.commit.lastAssigned
      const mine = this.reader.read(b.items, inodes, data)
      this.link.send({ t: 'verify', id, at, items: b.items })
      return { at, mine }
    })
    data.forEach((bytes, i) => { if (bytes) mine[i].sums = sumBlocks(bytes, b.items[i].block) })
    b.mine = mine
    b.inodes = inodes
    this.toSeq = Math.max(this.toSeq, at)
    return answered
  }

  private absorb (b: { tasks: Task[], items: VerifyItem[], mine?: VerifyAnswer[], inodes?: Array<string | null> }, a: Extract<Message, { t: 'verified' }>,
    stack: Task[], out: Mismatch[], noteData: (vol: number, path: string, r: Array<[number, number]>) => void,
    groups: LinkGroups | null): void {
    const mine = b.mine!
    if (a.answers.length !== b.items.length) throw replError('BAD_MESSAGE', `the secondary answered ${a.answers.length} of ${b.items.length} verify items`)
    b.items.forEach((it, k) => {
      if (it.entry && !a.answers[k].entry) throw replError('BAD_MESSAGE', `the secondary's answer to verify item ${k} has no entry`)
      if (it.list && !a.answers[k].names) throw replError('BAD_MESSAGE', `the secondary's answer to verify item ${k} has no names`)
    })
    const report = (m: Mismatch) => { out.push(m); this.progress.mismatches++; this.o.onMismatch?.(m) }
    let i = 0
    for (const t of b.tasks) {
      if (t.kind === 'links') {
        const n = t.paths.length
        const ours = linkPartition(mine.slice(i, i + n).map(x => x.entry))
        const theirs = linkPartition(a.answers.slice(i, i + n).map(x => x.entry))
        if (ours !== theirs) {
          report({ vol: t.vol, volume: this.volumes[t.vol].name, path: t.paths[0], kind: 'links', paths: t.paths, detail: `hard links of ${t.paths.map(p => JSON.stringify(p)).join(', ')}: primary groups [${ours}], secondary [${theirs}] (by position)` })
        }
        i += n
        continue
      }
      const m = mine[i]
      const th = a.answers[i]
      const key = b.inodes?.[i] ?? null
      i++
      if (t.kind === 'blocks') {
        this.progress.bytesDone += t.len
        const ranges = differingRanges(t.off, t.len, this.o.blockBytes, m.sums, th.sums)
        if (ranges.length > 0) noteData(t.vol, t.path, ranges)
        continue
      }
      this.progress.entriesDone++
      const mineE = m.entry!
      const theirsE = th.entry!
      const diffs = compareEntries(mineE, theirsE)
      for (const d of diffs) report({ vol: t.vol, volume: this.volumes[t.vol].name, path: t.path, ...d })
      if (groups && key && mineE.nlink > 1) {
        const g = groups.get(key)
        if (g) g.paths.push(t.path)
        else groups.set(key, { vol: t.vol, paths: [t.path] })
      }
      if (!t.deep || diffs.some(d => d.kind === 'missing' || d.kind === 'extra' || d.kind === 'type')) continue
      if (mineE.type === 'dir') {
        if (m.more || th.more) {
          // Too many names to list in one answer: the primary's names are
          // still walked (what the copy lacks is found), the copy's extra
          // names are not compared; the report says so.
          this.skipped.push(`${this.volumes[t.vol].name}:${t.path === '' ? '/' : t.path}: over ${verifyNamesMax} entries: names only the secondary has are not looked for`)
        }
        const names = [...new Set([...(m.more ? this.reader.names(t.vol, t.path) : m.names ?? []), ...(th.more ? [] : th.names ?? [])])].sort()
        const prefix = t.path === '' ? '' : t.path + '/'
        for (let k = names.length - 1; k >= 0; k--) stack.push({ kind: 'entry', vol: t.vol, path: prefix + names[k], deep: true })
      } else if (mineE.type === 'file' && mineE.size > 0) {
        stack.push({ kind: 'blocks', vol: t.vol, path: t.path, off: 0, len: mineE.size })
      }
    }
  }

  /** --verify-rate: no faster than the rate, over the whole pass. */
  private async pace (): Promise<void> {
    const p = this.progress
    const secs = (Date.now() - p.startedMs) / 1000
    p.rateBytesPerSec = secs > 0 ? Math.round(p.bytesDone / secs) : 0
    if (this.o.rateBytesPerSec <= 0) return
    const ahead = p.bytesDone / this.o.rateBytesPerSec - secs
    if (ahead > 0) await new Promise(resolve => setTimeout(resolve, Math.min(ahead * 1000, 1000)))
  }

  // ---- repair -------------------------------------------------------------

  /** Restates exactly what differs, through the journal, a handful of
   *  steps per lock as resync does (mounts keep serving); returns the tasks
   *  that verify those parts again. */
  private async repair (found: Mismatch[], groups: LinkGroups): Promise<Task[]> {
    const recheck: Task[] = []
    const it = repairSteps(found, groups, this.src, r => { this.capture.record(r, [], () => {}) }, recheck)[Symbol.iterator]()
    for (;;) {
      if (this.stopped) throw this.stopped
      if (await stepRound(this.capture, it, recordDataBytesMax)) break
      await new Promise(resolve => setImmediate(resolve))
    }
    return recheck
  }
}

/** Bytes of regular files under a directory (the progress total), at any
 *  depth and whatever the names' bytes (restate's reads). */
function treeBytes (root: string): number {
  let n = 0
  const walk = (d: string) => {
    let names: string[]
    try { names = readNames(d) } catch { return }
    for (const name of names) {
      const st = lstatOrNull(join(d, name))
      if (st?.isDirectory()) walk(join(d, name))
      else if (st?.isFile()) n += st.size
    }
  }
  walk(root)
  return n
}
