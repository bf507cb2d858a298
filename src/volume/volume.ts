// The volume seam: one small interface over backing storage, a contract per
// method (litestream's replica_client.go in spirit). apply/ drives it from
// records; the secondary, resync and tests use it too. Two backends: a
// directory tree (dir.ts) and one fixed-size image file (image.ts).
//
// Contracts that hold for every method:
// - `path` is volume-relative as in a record ('' = the root). It is checked
//   with checkRelPath and resolved so that no parent directory leads outside
//   the root (PATH_ESCAPE), and no operation follows a final symlink.
// - Operations have plain POSIX semantics, no idempotence: EEXIST, ENOENT
//   and friends surface as the usual Node errno errors (err.code). Replay
//   semantics (what is fine to meet twice) belong to apply/.
// - An operation the backend cannot hold (a mkdir on an image) throws
//   BAD_RECORD; a write past an image's end throws IMAGE_BOUNDS.
import type { Stats } from 'node:fs'
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import { openDirVolume } from './dir.js'
import { openImageVolume } from './image.js'

/** What a path should be, from a 'state' record (mode/uid/gid/size/target
 *  apply to the types that have them). */
export interface PathState {
  type: 'absent' | 'file' | 'dir' | 'symlink'
  mode: number
  uid: number
  gid: number
  size: number
  target: string
  whole: boolean
}

export interface Volume {
  readonly spec: VolumeSpec

  /** Writes all of `data` at `off` of an existing regular file (ENOENT if
   *  missing: a write creates nothing). */
  write (path: string, off: number, data: Uint8Array): Promise<void>
  /** Reads up to `len` bytes at `off`; fewer at end of file. */
  read (path: string, off: number, len: number): Promise<Buffer>
  /** Sets an existing regular file's size. */
  truncate (path: string, size: number): Promise<void>
  /** Creates a new empty regular file (EEXIST if the name exists) with
   *  exactly `mode & 0o7777` (not reduced by our umask). */
  create (path: string, mode: number): Promise<void>
  /** Creates a directory with exactly `mode & 0o7777`. */
  mkdir (path: string, mode: number): Promise<void>
  /** Creates a fifo, socket, device or regular file from a mknod mode; devices and
   *  sockets are refused with BAD_RECORD. */
  mknod (path: string, mode: number, rdev: number): Promise<void>
  unlink (path: string): Promise<void>
  rmdir (path: string): Promise<void>
  /** rename(2): replaces an existing target (file, or empty directory). */
  rename (from: string, to: string): Promise<void>
  /** Adds the name `to` for the existing `path` (link(2), not following). */
  link (path: string, to: string): Promise<void>
  /** Creates the symlink `path` whose content is `target`. The target is
   *  data: it is not confined, and nothing here ever follows it. */
  symlink (path: string, target: string): Promise<void>
  /** chmod of a non-symlink (PATH_ESCAPE if `path` is a symlink). */
  chmod (path: string, mode: number): Promise<void>
  /** lchown: owner of the entry itself. */
  chown (path: string, uid: number, gid: number): Promise<void>
  /** lutimes with millisecond times; exact to the nanosecond when `ns` (the
   *  sub-second nanoseconds of each) is given. */
  utimens (path: string, atimeMs: number, mtimeMs: number, ns?: [number, number]): Promise<void>
  /** Sets or replaces an extended attribute on the entry itself. */
  setxattr (path: string, name: string, value: Uint8Array): Promise<void>
  /** Removes an extended attribute (ENODATA if it is not set). */
  removexattr (path: string, name: string): Promise<void>
  /** Value of an extended attribute, null if not set. */
  getxattr (path: string, name: string): Promise<Buffer | null>
  /** Makes the file's (or directory's) data and metadata durable. */
  fsync (path: string): Promise<void>
  /** lstat, or null if nothing is at `path`. */
  lstat (path: string): Promise<Stats | null>
  readlink (path: string): Promise<string>
  /** Makes `path` be as `s` says, whatever is there now (resync/recovery).
   *  Idempotent by nature. */
  state (path: string, s: PathState): Promise<void>
  /** Releases open files; the volume is unusable afterwards. */
  close (): Promise<void>
}

/** Opens every volume of a group, keyed by volume number. Directory roots
 *  must exist; a missing image file is created at `spec.size`. */
export async function openVolumes (specs: readonly VolumeSpec[]): Promise<Map<number, Volume>> {
  const vols = new Map<number, Volume>()
  try {
    for (const spec of specs) {
      if (vols.has(spec.num)) throw replError('USAGE', `volume number ${spec.num} is given twice`)
      vols.set(spec.num, spec.kind === 'image' ? await openImageVolume(spec) : await openDirVolume(spec))
    }
  } catch (err) {
    await closeVolumes(vols)
    throw err
  }
  return vols
}

export async function closeVolumes (vols: Map<number, Volume>): Promise<void> {
  for (const v of vols.values()) await v.close().catch(() => {})
  vols.clear()
}
