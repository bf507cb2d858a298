// Directory volume: a file tree under a root, every path confined to it.
//
// Confinement, the I/O half (confine.ts did the syntax): the parent of a
// path is opened by the kernel beneath the root's directory fd (openat2
// RESOLVE_BENEATH, native/addon_posix.c): a relative symlink on the way down
// that stays inside is followed, one that leads out (or any absolute
// symlink, whose target names the primary's side anyway) is PATH_ESCAPE.
// The operation then acts on `/proc/self/fd/<parent fd>/<name>` and never
// follows the final name: opens use O_NOFOLLOW, ownership and times use
// lchown/lutimes, xattrs the l* calls, chmod refuses a symlink. Between the
// check and the call nothing else writes the copy (the secondary applies
// alone, in order), so the check cannot be raced by the records themselves.
//
// Every path handed to a call is short, whatever the depth: a record's
// path is up to 4095 bytes under the root, so its absolute form can pass
// PATH_MAX, which the primary's core (*at() calls) does not mind either.
//
// The calls are synchronous, but for fsync, xattrs and removing a tree (a
// state record of a path that was a directory): apply goes record by
// record, and a round trip through libuv's pool per call left the secondary
// idle most of the time (measured: 64% idle while 20k writes waited, when
// each pwrite went through the pool; 19 s behind after a tar while each
// file's open, chmod, close and lchown still did: native-notes/
// performance.md 9).
import fs, { promises as fsp, constants as fsc, type Stats } from 'node:fs'
import { LRUCache } from 'lru-cache'
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import { checkRelPath, splitRelPath } from './confine.js'
import { entryPath, fdPath } from './long-path.js'
import { nameFromBytes, syscallName } from '../core/names.js'
import type { PathState, Volume } from './volume.js'
import { getXattr, removeXattr, setXattr } from './xattr.js'
import { nativeCore } from '../native/addon.js'
import { writePieces } from './write-pieces.js'

const permBits = 0o7777
// O_NONBLOCK: a fifo named by a record must fail (ENXIO), not hang apply.
const openWrite = fsc.O_WRONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK
const openRead = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK
// O_PATH (not in fs.constants): a directory held for lookups only.
const openDirFlags = 0o10000000 | fsc.O_DIRECTORY

// libuv takes times as double seconds and truncates them to whole
// microseconds; ms/1000 is often a hair below the intended value (.123 is
// stored as .12299999...), which would lose a microsecond. Half a
// microsecond of bias (more than a double's step at today's epoch seconds)
// makes the truncation land on the recorded time.
function utimeSeconds (ms: number): number {
  return (ms + 0.0005) / 1000
}

export async function openDirVolume (spec: VolumeSpec): Promise<Volume> {
  let root: string
  try {
    root = await fsp.realpath(spec.path)
  } catch (err) {
    throw replError('USAGE', `volume ${spec.name}: directory ${spec.path} cannot be opened (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      'create the backing directory first')
  }
  if (!(await fsp.stat(root)).isDirectory()) throw replError('USAGE', `volume ${spec.name}: ${spec.path} is not a directory`)
  return new DirVolume(spec, root)
}

class DirVolume implements Volume {
  constructor (readonly spec: VolumeSpec, private readonly root: string) {}

  /** Calls `fn` with a short path naming a record path's entry: its parent
   *  opened beneath the root (closed once `fn` returns) plus the last name
   *  (a Buffer when a name is not UTF-8: core/names.ts). */
  private at<T> (path: string, fn: (p: string | Buffer) => T): T {
    const { p, parentFd } = this.entry(path)
    try {
      return fn(p)
    } finally {
      if (parentFd >= 0) fs.closeSync(parentFd)
    }
  }

  /** `at` for a call that waits on the pool (fsync, xattrs, removing a tree). */
  private async atAsync<T> (path: string, fn: (p: string | Buffer) => Promise<T>): Promise<T> {
    const { p, parentFd } = this.entry(path)
    try {
      return await fn(p)
    } finally {
      if (parentFd >= 0) fs.closeSync(parentFd)
    }
  }

  /** The short path of `path`'s entry, and its parent's fd (-1 for the root). */
  private entry (path: string): { p: string | Buffer, parentFd: number } {
    checkRelPath(path)
    if (path === '') return { p: this.root, parentFd: -1 }
    const { parent, name } = splitRelPath(path)
    let fd: number
    try {
      fd = nativeCore().openBeneath(this.root, parent === '' ? '.' : syscallName(parent))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
      throw replError('PATH_ESCAPE', `volume ${this.spec.name}: ${JSON.stringify(path)} passes through a symlink that leads outside the volume`,
        'the copy holds a symlink out of its root; nothing was applied through it')
    }
    return { p: entryPath(fd, name), parentFd: fd }
  }

  /** `at` for operations that add or remove the name itself. */
  private atEntry<T> (path: string, op: string, fn: (p: string | Buffer) => T): T {
    if (checkRelPath(path) === '') throw replError('BAD_RECORD', `volume ${this.spec.name}: cannot ${op} the volume root`)
    return this.at(path, fn)
  }

  /** An fd of the regular file (or directory) `path`; the caller closes it. */
  private open (path: string, flags: number): number {
    try {
      return this.at(path, p => {
        this.checkDataNode(path, p)
        return fs.openSync(p, flags)
      })
    } catch (err) {
      // O_NOFOLLOW on a final symlink gives ELOOP: a record never names a
      // symlink for data (the kernel resolves links before FUSE sees them).
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw this.symlinkRefused(path)
      throw err
    }
  }

  /** Data is read and written only in regular files (and a directory is opened to sync
   *  it): any other node is refused before it is opened. A device node's data is the
   *  device itself, outside every volume (a block device record, then a write, would
   *  write the host's disk), and opening some devices acts by itself. The primary never
   *  journals data for such a node: I/O on it goes to the device, not through FUSE. */
  private checkDataNode (path: string, entry: string | Buffer): void {
    const st = lstatOrNull(entry) // missing, or a symlink: open says so
    if (!st || st.isFile() || st.isDirectory() || st.isSymbolicLink()) return
    const what = st.isBlockDevice() ? 'a block device' : st.isCharacterDevice() ? 'a character device' : st.isFIFO() ? 'a fifo' : 'a socket'
    throw Object.assign(new Error(`EINVAL: volume ${this.spec.name}: ${JSON.stringify(path)} is ${what}, not a regular file; apply writes data only to regular files`), { code: 'EINVAL' })
  }

  private symlinkRefused (path: string): Error {
    return replError('PATH_ESCAPE', `volume ${this.spec.name}: ${JSON.stringify(path)} is a symlink; apply does not follow symlinks`)
  }

  // Open files for writes, by path: a stream of writes to one file (the
  // common case) costs one write each, not resolve + open + write + close.
  // Any change to the namespace may change what a path names, so every
  // other mutating method empties the cache first (`forget`).
  private readonly writers = new LRUCache<string, number>({
    max: 64,
    dispose: fd => {
      const syncs = this.syncing.get(fd)
      if (syncs) syncs.close = true // closed once its fsyncs return
      else closeQuietly(fd)
    }
  })

  /** fds with fsyncs under way in the pool → how many, and whether to
   *  close them after the last. Two at once on one file: the secondary's
   *  trim flushes beside its apply, whose barriers flush too (receiver.ts);
   *  closed after the first, the second would sync whatever file took the
   *  number next. */
  private readonly syncing = new Map<number, { inFlight: number, close: boolean }>()

  private forget (): void {
    this.writers.clear()
  }

  async write (path: string, off: number, data: Uint8Array): Promise<void> {
    let fd = this.writers.get(path)
    if (fd === undefined) {
      fd = this.open(path, openWrite)
      this.writers.set(path, fd)
    }
    writePieces(fd, data, off)
  }

  async read (path: string, off: number, len: number): Promise<Buffer> {
    const fd = this.open(path, openRead)
    try {
      const buf = Buffer.alloc(len)
      return buf.subarray(0, fs.readSync(fd, buf, 0, len, off))
    } finally { fs.closeSync(fd) }
  }

  async truncate (path: string, size: number): Promise<void> {
    this.forget()
    const fd = this.open(path, openWrite)
    try { fs.ftruncateSync(fd, size) } finally { fs.closeSync(fd) }
  }

  async create (path: string, mode: number): Promise<void> {
    this.forget()
    this.atEntry(path, 'create', p => createAt(p, mode))
  }

  async mkdir (path: string, mode: number): Promise<void> {
    this.forget()
    this.atEntry(path, 'mkdir', p => {
      fs.mkdirSync(p, mode & permBits)
      fs.chmodSync(p, mode & permBits)
    })
  }

  async mknod (path: string, mode: number, rdev: number): Promise<void> {
    this.forget()
    const type = mode & fsc.S_IFMT
    if (type === 0 || type === fsc.S_IFREG) return this.create(path, mode)
    if (type !== fsc.S_IFIFO && type !== fsc.S_IFSOCK && type !== fsc.S_IFCHR && type !== fsc.S_IFBLK) {
      throw replError('BAD_RECORD', `volume ${this.spec.name}: mknod of ${JSON.stringify(path)} with type ${type.toString(8)} refused`)
    }
    this.atEntry(path, 'mknod', p => {
      // Node has no mknod: the native core's (exact mode, whatever our umask).
      nativeCore().mknod(p, type | (mode & permBits), rdev)
      fs.chmodSync(p, mode & permBits)
    })
  }

  async unlink (path: string): Promise<void> { this.forget(); this.atEntry(path, 'unlink', p => fs.unlinkSync(p)) }

  async rmdir (path: string): Promise<void> { this.forget(); this.atEntry(path, 'rmdir', p => fs.rmdirSync(p)) }

  async rename (from: string, to: string): Promise<void> {
    this.forget()
    this.atEntry(from, 'rename', a => this.atEntry(to, 'rename onto', b => fs.renameSync(a, b)))
  }

  async link (path: string, to: string): Promise<void> {
    this.forget()
    // link(2) on Linux does not follow a symlink named by its first argument.
    this.atEntry(path, 'link', a => this.atEntry(to, 'link onto', b => fs.linkSync(a, b)))
  }

  async symlink (path: string, target: string): Promise<void> {
    this.forget()
    this.atEntry(path, 'symlink', p => fs.symlinkSync(syscallName(target), p))
  }

  async chmod (path: string, mode: number): Promise<void> {
    this.at(path, p => this.chmodAt(path, p, mode))
  }

  /** Linux has no lchmod: refuse a symlink, then chmod the checked name. */
  private chmodAt (path: string, p: string | Buffer, mode: number): void {
    if (fs.lstatSync(p).isSymbolicLink()) throw this.symlinkRefused(path)
    fs.chmodSync(p, mode & permBits)
  }

  async chown (path: string, uid: number, gid: number): Promise<void> { this.at(path, p => fs.lchownSync(p, uid, gid)) }

  async utimens (path: string, atimeMs: number, mtimeMs: number, ns?: [number, number]): Promise<void> {
    this.at(path, p => {
      if (!ns) return fs.lutimesSync(p, utimeSeconds(atimeMs), utimeSeconds(mtimeMs))
      // Whole seconds from the ms figure less its sub-ms part: exact, since
      // the ms figure is within a µs of seconds*1000 + ns/1e6.
      const sec = (ms: number, n: number) => Math.round((ms - n / 1e6) / 1000)
      nativeCore().utimens(p, sec(atimeMs, ns[0]), ns[0], sec(mtimeMs, ns[1]), ns[1])
    })
  }

  async setxattr (path: string, name: string, value: Uint8Array): Promise<void> {
    await this.atAsync(path, async p => {
      // The xattr binding takes text paths; a name that is not UTF-8 goes native.
      if (typeof p === 'string') return setXattr(p, name, value)
      nativeCore().xattrSet(p, name, Buffer.from(value.buffer, value.byteOffset, value.length))
    })
  }

  async removexattr (path: string, name: string): Promise<void> {
    await this.atAsync(path, async p => {
      if (typeof p === 'string') return removeXattr(p, name)
      nativeCore().xattrRemove(p, name)
    })
  }

  async getxattr (path: string, name: string): Promise<Buffer | null> {
    return this.atAsync(path, async p => {
      if (typeof p === 'string') return getXattr(p, name)
      return nativeCore().xattrs(p).find(([n]) => n === name)?.[1] ?? null
    })
  }

  /** Through the pool: a sync can take long, and the receiver stores
   *  arriving batches meanwhile. On the cached writer when there is one
   *  (an fsync per SQLite transaction: opening the file again for it, the
   *  secondary spent 0.75 ms of CPU per transaction, against 0.57 ms), which
   *  a `forget` meanwhile closes only after. */
  async fsync (path: string): Promise<void> {
    const cached = this.writers.get(path)
    const fd = cached ?? this.open(path, openRead)
    let syncs = this.syncing.get(fd)
    if (!syncs) this.syncing.set(fd, syncs = { inFlight: 0, close: cached === undefined })
    syncs.inFlight++
    try {
      await new Promise<void>((resolve, reject) => fs.fsync(fd, err => err ? reject(err) : resolve()))
    } finally {
      if (--syncs.inFlight === 0) {
        this.syncing.delete(fd)
        if (syncs.close) closeQuietly(fd)
      }
    }
  }

  async lstat (path: string): Promise<Stats | null> {
    try {
      return this.at(path, lstatOrNull)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null // the parent is missing
      throw err
    }
  }

  async readlink (path: string): Promise<string> { return this.at(path, readlinkName) }

  async state (path: string, s: PathState): Promise<void> {
    this.forget()
    if (checkRelPath(path) === '' && s.type !== 'dir') {
      throw replError('BAD_RECORD', `volume ${this.spec.name}: the volume root can only be stated as a directory, not ${s.type}`)
    }
    // Through the pool only to remove a tree, which can be large: the
    // thread keeps answering the primary's heartbeats meanwhile.
    await this.atAsync(path, async p => {
      let cur = lstatOrNull(p)
      const clear = async (): Promise<void> => {
        if (cur) await removeTree(p)
        cur = null
      }
      switch (s.type) {
        case 'absent':
          return clear()
        case 'dir':
          if (cur && !cur.isDirectory()) await clear()
          if (!cur) fs.mkdirSync(p, s.mode & permBits)
          break
        case 'symlink':
          if (cur && !(cur.isSymbolicLink() && readlinkName(p) === s.target)) await clear()
          if (!cur) fs.symlinkSync(syscallName(s.target), p)
          break
        case 'file':
          if (cur && !cur.isFile()) await clear()
          if (!cur) createAt(p, s.mode)
          if (s.whole) this.truncateAt(path, p, 0) // rebuilt by the writes that follow
          this.truncateAt(path, p, s.size)
          break
      }
      // Mode and owner only where they differ, so a secondary running
      // unprivileged can still apply states whose owner already matches.
      const st = fs.lstatSync(p)
      if (!st.isSymbolicLink() && (st.mode & permBits) !== (s.mode & permBits)) this.chmodAt(path, p, s.mode)
      if (st.uid !== s.uid || st.gid !== s.gid) fs.lchownSync(p, s.uid, s.gid)
    })
  }

  private truncateAt (path: string, p: string | Buffer, size: number): void {
    let fd: number
    try {
      fd = fs.openSync(p, openWrite)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw this.symlinkRefused(path)
      throw err
    }
    try { fs.ftruncateSync(fd, size) } finally { fs.closeSync(fd) }
  }

  async close (): Promise<void> { this.forget() }
}

function closeQuietly (fd: number): void {
  try { fs.closeSync(fd) } catch {}
}

/** O_EXCL: a name already there, a dangling symlink included, is EEXIST. */
function createAt (p: string | Buffer, mode: number): void {
  const fd = fs.openSync(p, fsc.O_CREAT | fsc.O_EXCL | openWrite, mode & permBits)
  // Exact mode, whatever our umask: the copy must not depend on the daemon.
  try { fs.fchmodSync(fd, mode & permBits) } finally { fs.closeSync(fd) }
}

/** A symlink's target as a name (its bytes, escaped where not UTF-8). */
function readlinkName (p: string | Buffer): string {
  return nameFromBytes(fs.readlinkSync(p, { encoding: 'buffer' }))
}

function lstatOrNull (p: string | Buffer): Stats | null {
  return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null
}

/** Removes `p` and, if it is a directory, everything under it, at any
 *  depth: each directory is held by an fd and its entries named through it
 *  (fs.rm builds ever longer paths). Symlinks are removed, never followed. */
async function removeTree (p: string | Buffer): Promise<void> {
  const st = lstatOrNull(p)
  if (!st) return
  if (!st.isDirectory()) return fsp.unlink(p)
  const fd = fs.openSync(p, openDirFlags | fsc.O_NOFOLLOW)
  try {
    const dir = Buffer.from(fdPath(fd, '') + '/')
    // Names as bytes: one that is not UTF-8 must be named exactly.
    for (const name of await fsp.readdir(fdPath(fd, ''), { encoding: 'buffer' })) await removeTree(Buffer.concat([dir, name]))
  } finally {
    fs.closeSync(fd)
  }
  await fsp.rmdir(p)
}
