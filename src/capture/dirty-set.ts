// The dirty set: what changed on the primary and is not on the secondary,
// when the journal no longer says so (track mode after an overflow). Whole
// paths and metadata as marks, file data as exact byte ranges (extent-map).
// Persisted to the state directory, so a restart still knows what to
// resync; the activity log covers what was in flight at a crash.
import fs from 'node:fs'
import { join } from 'node:path'
import type { Record } from '../core/records.js'
import { unreachable } from '../core/records.js'
import { decodeValue, encodeValue } from '../journal/codec.js'
import { writeFileAtomic } from '../journal/checkpoint.js'
import { markKey, type HotMark } from './activity-log.js'
import { ExtentMap } from './extent-map.js'
import { nameFromWire, nameToWire } from '../core/names.js'

const fileName = 'dirty.cbor'

export class DirtySet {
  readonly marks = new Map<string, HotMark>()
  extents = new ExtentMap()
  private changed = false

  constructor (readonly path: string) {}

  static load (stateDir: string): DirtySet {
    const d = new DirtySet(join(stateDir, fileName))
    let buf: Buffer
    try {
      buf = fs.readFileSync(d.path)
    } catch {
      return d
    }
    // Names that are not UTF-8 are stored as their bytes (core/names.ts).
    const v = decodeValue(buf) as { marks?: HotMark[], extents?: Parameters<typeof ExtentMap.fromJSON>[0] }
    for (const m of v.marks ?? []) {
      const mark = { ...m, path: nameFromWire(m.path) }
      d.marks.set(markKey(mark), mark)
    }
    d.extents = ExtentMap.fromJSON((v.extents ?? []).map(([vol, path, ranges]) => [vol, nameFromWire(path), ranges]))
    return d
  }

  get empty (): boolean {
    return this.marks.size === 0 && this.extents.summary().every(s => s.ranges === 0)
  }

  /** What a record changed, as marks and ranges (seq 0: not journalled). */
  add (r: Record): void {
    this.changed = true
    const path = (p: string, kind: HotMark['kind'] = 'path') => {
      const m: HotMark = { vol: r.vol, path: p, kind, region: -1 }
      this.marks.set(markKey(m), m)
    }
    switch (r.kind) {
      case 'write': this.extents.add(r.vol, r.path, r.off, r.off + r.data.length, 0); break
      case 'truncate': this.extents.clip(r.vol, r.path, r.size); path(r.path, 'meta'); break
      case 'chmod': case 'chown': case 'utimens': case 'setxattr': case 'removexattr': path(r.path, 'meta'); break
      case 'create': case 'mkdir': case 'mknod': case 'symlink': case 'unlink': case 'rmdir': case 'state': path(r.path); break
      case 'rename': this.extents.rename(r.vol, r.path, r.to); path(r.path); path(r.to); break
      case 'link': path(r.to); break
      case 'fsync': break
      default: unreachable(r)
    }
  }

  /** A hot part as it is (path, metadata or a region): owed marks (owed.ts). */
  mark (m: HotMark): void {
    this.changed = true
    this.marks.set(markKey(m), m)
  }

  /** Takes everything out (a resync starts on it). */
  drain (): { marks: HotMark[], extents: ExtentMap } {
    const out = { marks: [...this.marks.values()], extents: this.extents }
    this.marks.clear()
    this.extents = new ExtentMap()
    this.changed = true
    return out
  }

  /** Writes the set if it changed since the last save. */
  async save (): Promise<void> {
    // One write at a time (the 1 s timer, an overflow, a resync all save):
    // two at once share the temporary file, and the second rename fails.
    const p = this.saving.then(async () => {
      if (!this.changed) return
      this.changed = false
      try {
        await writeFileAtomic(this.path, encodeValue({
          marks: [...this.marks.values()].map(m => ({ ...m, path: nameToWire(m.path) })),
          extents: this.extents.toJSON().map(([vol, path, ranges]) => [vol, nameToWire(path), ranges])
        }))
      } catch (err) {
        this.changed = true // not saved: the next save writes it (a full disk freed, say)
        throw err
      }
    })
    this.saving = p.catch(() => {})
    return p
  }

  private saving: Promise<void> = Promise.resolve()
}
