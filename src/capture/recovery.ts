// After an unclean stop: the activity log names the parts of the volumes
// where an operation may have reached the backing store without reaching the
// journal. Their *current* state is re-journalled as 'state' and 'write'
// records, so a replay of the journal ends identical to the backing store.
// (Redo from the backing store: it is the truth the application saw.)
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Record } from '../core/records.js'
import { activityRegionBytes, recordDataBytesMax } from '../core/limits.js'
import type { HotMark } from './activity-log.js'

export interface RecoverySource {
  /** Backing path of a volume-relative path, or null for an unknown volume. */
  backing (vol: number, rel: string): string | null
  /** Extended attributes of a backing path (name → value). */
  xattrs (abs: string): Promise<Array<[string, Buffer]>>
}

const order = { path: 0, meta: 1, region: 2 } as const

/** Emits, through `emit`, the records that restate the hot parts. */
export async function restate (marks: HotMark[], src: RecoverySource, emit: (r: Record) => void): Promise<void> {
  const sorted = [...marks].sort((a, b) => order[a.kind] - order[b.kind] || a.path.localeCompare(b.path))
  for (const m of sorted) {
    const abs = src.backing(m.vol, m.path)
    if (abs === null) continue
    switch (m.kind) {
      case 'path': await restatePath(m.vol, m.path, abs, true, src, emit); break
      case 'meta': await restatePath(m.vol, m.path, abs, false, src, emit); break
      case 'region': await restateRegion(m.vol, m.path, abs, m.region, emit); break
    }
  }
}

async function restatePath (vol: number, path: string, abs: string, whole: boolean, src: RecoverySource, emit: (r: Record) => void): Promise<void> {
  const st = await fsp.lstat(abs).catch(() => null)
  const base = { kind: 'state' as const, vol, path, mode: 0, uid: 0, gid: 0, size: 0, target: '', whole }
  if (!st) return emit({ ...base, type: 'absent' })
  const attrs = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }
  if (st.isSymbolicLink()) return emit({ ...base, ...attrs, type: 'symlink', target: await fsp.readlink(abs) })
  if (st.isDirectory()) {
    emit({ ...base, ...attrs, type: 'dir' })
    await restateXattrs(vol, path, abs, src, emit)
    if (whole) {
      for (const name of (await fsp.readdir(abs)).sort()) {
        await restatePath(vol, path === '' ? name : `${path}/${name}`, join(abs, name), true, src, emit)
      }
    }
    return
  }
  if (!st.isFile()) return // fifos, sockets: nothing to restate but their existence, which mknod covers
  emit({ ...base, ...attrs, type: 'file', size: st.size })
  await restateXattrs(vol, path, abs, src, emit)
  if (whole) await restateBytes(vol, path, abs, 0, st.size, emit)
}

async function restateRegion (vol: number, path: string, abs: string, region: number, emit: (r: Record) => void): Promise<void> {
  const st = await fsp.stat(abs).catch(() => null)
  if (!st || !st.isFile()) return // gone since: the op that removed it is journalled or marked itself
  const start = region * activityRegionBytes
  const end = Math.min(st.size, start + activityRegionBytes)
  if (start < end) await restateBytes(vol, path, abs, start, end, emit)
}

async function restateBytes (vol: number, path: string, abs: string, start: number, end: number, emit: (r: Record) => void): Promise<void> {
  const fh = await fsp.open(abs, 'r')
  try {
    for (let off = start; off < end; off += recordDataBytesMax) {
      const len = Math.min(recordDataBytesMax, end - off)
      const data = Buffer.alloc(len)
      const { bytesRead } = await fh.read(data, 0, len, off)
      if (bytesRead === 0) break
      emit({ kind: 'write', vol, path, off, data: data.subarray(0, bytesRead) })
    }
  } finally {
    await fh.close()
  }
}

async function restateXattrs (vol: number, path: string, abs: string, src: RecoverySource, emit: (r: Record) => void): Promise<void> {
  for (const [name, value] of await src.xattrs(abs)) emit({ kind: 'setxattr', vol, path, name, value, flags: 0 })
}
