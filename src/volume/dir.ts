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
   *  opened beneath the root (closed once `fn` settles) plus the last name
   *  (a Buffer when a name is not UTF-8: core/names.ts). */
  private async at<T> (path: string, fn: (p: string | Buffer) => Promise<T>): Promise<T> {
    checkRelPath(path)
    if (path === '') return fn(this.root)
    const { parent, name } = splitRelPath(path)
    let fd: number
    try {
      fd = nativeCore().openBeneath(this.root, parent === '' ? '.' : syscallName(parent))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
      throw replError('PATH_ESCAPE', `volume ${this.spec.name}: ${JSON.stringify(path)} passes through a symlink that leads outside the volume`,
        'the copy holds a symlink out of its root; nothing was applied through it')
    }
    try {
      return await fn(entryPath(fd, name))
    } finally {
      fs.closeSync(fd)
    }
  }

  /** `at` for operations that add or remove the name itself. */
  private async atEntry<T> (path: string, op: string, fn: (p: string | Buffer) => Promise<T>): Promise<T> {
    if (checkRelPath(path) === '') throw replError('BAD_RECORD', `volume ${this.spec.name}: cannot ${op} the volume root`)
    return this.at(path, fn)
  }

  private async open (path: string, flags: number, mode?: number): Promise<fsp.FileHandle> {
    try {
      return await this.at(path, async p => {
        if ((flags & fsc.O_CREAT) === 0) await this.checkDataNode(path, p)
        return fsp.open(p, flags, mode)
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
  private async checkDataNode (path: string, entry: string | Buffer): Promise<void> {
    const st = await fsp.lstat(entry).catch(() => null) // missing, or a symlink: open says so
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
  private readonly writers = new LRUCache<string, fsp.FileHandle>({
    max: 64,
    dispose: fh => { void fh.close().catch(() => {}) }
  })

  private forget (): void {
    this.writers.clear()
  }

  async write (path: string, off: number, data: Uint8Array): Promise<void> {
    let fh = this.writers.get(path)
    if (!fh) {
      fh = await this.open(path, openWrite)
      this.writers.set(path, fh)
    }
    // A synchronous pwrite: apply goes record by record, and a round trip
    // through libuv's pool per record left the secondary idle most of the
    // time (measured: 64% idle while 20k records waited to be applied).
    let done = 0
    while (done < data.length) done += fs.writeSync(fh.fd, data, done, data.length - done, off + done)
  }

  async read (path: string, off: number, len: number): Promise<Buffer> {
    const fh = await this.open(path, openRead)
    try {
      const buf = Buffer.alloc(len)
      const { bytesRead } = await fh.read(buf, 0, len, off)
      return buf.subarray(0, bytesRead)
    } finally { await fh.close() }
  }

  async truncate (path: string, size: number): Promise<void> {
    this.forget()
    const fh = await this.open(path, openWrite)
    try { await fh.truncate(size) } finally { await fh.close() }
  }

  async create (path: string, mode: number): Promise<void> {
    this.forget()
    await this.atEntry(path, 'create', p => this.createAt(p, mode))
  }

  async mkdir (path: string, mode: number): Promise<void> {
    this.forget()
    await this.atEntry(path, 'mkdir', async p => {
      await fsp.mkdir(p, mode & permBits)
      await fsp.chmod(p, mode & permBits)
    })
  }

  async mknod (path: string, mode: number, rdev: number): Promise<void> {
    this.forget()
    const type = mode & fsc.S_IFMT
    if (type === 0 || type === fsc.S_IFREG) return this.create(path, mode)
    if (type !== fsc.S_IFIFO && type !== fsc.S_IFSOCK && type !== fsc.S_IFCHR && type !== fsc.S_IFBLK) {
      throw replError('BAD_RECORD', `volume ${this.spec.name}: mknod of ${JSON.stringify(path)} with type ${type.toString(8)} refused`)
    }
    await this.atEntry(path, 'mknod', async p => {
      // Node has no mknod: the native core's (exact mode, whatever our umask).
      nativeCore().mknod(p, type | (mode & permBits), rdev)
      await fsp.chmod(p, mode & permBits)
    })
  }

  async unlink (path: string): Promise<void> { this.forget(); await this.atEntry(path, 'unlink', p => fsp.unlink(p)) }

  async rmdir (path: string): Promise<void> { this.forget(); await this.atEntry(path, 'rmdir', p => fsp.rmdir(p)) }

  async rename (from: string, to: string): Promise<void> {
    this.forget()
    await this.atEntry(from, 'rename', a => this.atEntry(to, 'rename onto', b => fsp.rename(a, b)))
  }

  async link (path: string, to: string): Promise<void> {
    this.forget()
    // link(2) on Linux does not follow a symlink named by its first argument.
    await this.atEntry(path, 'link', a => this.atEntry(to, 'link onto', b => fsp.link(a, b)))
  }

  async symlink (path: string, target: string): Promise<void> {
    this.forget()
    await this.atEntry(path, 'symlink', p => fsp.symlink(syscallName(target), p))
  }

  async chmod (path: string, mode: number): Promise<void> {
    await this.at(path, p => this.chmodAt(path, p, mode))
  }

  /** Linux has no lchmod: refuse a symlink, then chmod the checked name. */
  private async chmodAt (path: string, p: string | Buffer, mode: number): Promise<void> {
    if ((await fsp.lstat(p)).isSymbolicLink()) throw this.symlinkRefused(path)
    await fsp.chmod(p, mode & permBits)
  }

  async chown (path: string, uid: number, gid: number): Promise<void> { await this.at(path, p => fsp.lchown(p, uid, gid)) }

  async utimens (path: string, atimeMs: number, mtimeMs: number, ns?: [number, number]): Promise<void> {
    await this.at(path, async p => {
      if (!ns) return fsp.lutimes(p, utimeSeconds(atimeMs), utimeSeconds(mtimeMs))
      // Whole seconds from the ms figure less its sub-ms part: exact, since
      // the ms figure is within a µs of seconds*1000 + ns/1e6.
      const sec = (ms: number, n: number) => Math.round((ms - n / 1e6) / 1000)
      nativeCore().utimens(p, sec(atimeMs, ns[0]), ns[0], sec(mtimeMs, ns[1]), ns[1])
    })
  }

  async setxattr (path: string, name: string, value: Uint8Array): Promise<void> {
    await this.at(path, async p => {
      // The xattr binding takes text paths; a name that is not UTF-8 goes native.
      if (typeof p === 'string') return setXattr(p, name, value)
      nativeCore().xattrSet(p, name, Buffer.from(value.buffer, value.byteOffset, value.length))
    })
  }

  async removexattr (path: string, name: string): Promise<void> {
    await this.at(path, async p => {
      if (typeof p === 'string') return removeXattr(p, name)
      nativeCore().xattrRemove(p, name)
    })
  }

  async getxattr (path: string, name: string): Promise<Buffer | null> {
    return this.at(path, async p => {
      if (typeof p === 'string') return getXattr(p, name)
      return nativeCore().xattrs(p).find(([n]) => n === name)?.[1] ?? null
    })
  }

  async fsync (path: string): Promise<void> {
    const cached = this.writers.get(path)
    if (cached) return cached.sync()
    const fh = await this.open(path, openRead)
    try { await fh.sync() } finally { await fh.close() }
  }

  async lstat (path: string): Promise<Stats | null> {
    try {
      return await this.at(path, lstatOrNull)
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
    await this.at(path, async p => {
      let cur = await lstatOrNull(p)
      const clear = async (): Promise<void> => {
        if (cur) await removeTree(p)
        cur = null
      }
      switch (s.type) {
        case 'absent':
          return clear()
        case 'dir':
          if (cur && !cur.isDirectory()) await clear()
          if (!cur) await fsp.mkdir(p, s.mode & permBits)
          break
        case 'symlink':
          if (cur && !(cur.isSymbolicLink() && await readlinkName(p) === s.target)) await clear()
          if (!cur) await fsp.symlink(syscallName(s.target), p)
          break
        case 'file':
          if (cur && !cur.isFile()) await clear()
          if (!cur) await this.createAt(p, s.mode)
          if (s.whole) await this.truncateAt(path, p, 0) // rebuilt by the writes that follow
          await this.truncateAt(path, p, s.size)
          break
      }
      // Mode and owner only where they differ, so a secondary running
      // unprivileged can still apply states whose owner already matches.
      const st = await fsp.lstat(p)
      if (!st.isSymbolicLink() && (st.mode & permBits) !== (s.mode & permBits)) await this.chmodAt(path, p, s.mode)
      if (st.uid !== s.uid || st.gid !== s.gid) await fsp.lchown(p, s.uid, s.gid)
    })
  }

  /** O_EXCL: a name already there, a dangling symlink included, is EEXIST. */
  private async createAt (p: string | Buffer, mode: number): Promise<void> {
    const fh = await fsp.open(p, fsc.O_CREAT | fsc.O_EXCL | openWrite, mode & permBits)
    // Exact mode, whatever our umask: the copy must not depend on the daemon.
    try { await fh.chmod(mode & permBits) } finally { await fh.close() }
  }

  private async truncateAt (path: string, p: string | Buffer, size: number): Promise<void> {
    let fh: fsp.FileHandle
    try {
      fh = await fsp.open(p, openWrite)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw this.symlinkRefused(path)
      throw err
    }
    try { await fh.truncate(size) } finally { await fh.close() }
  }

  async close (): Promise<void> { this.forget() }
}

/** A symlink's target as a name (its bytes, escaped where not UTF-8). */
async function readlinkName (p: string | Buffer): Promise<string> {
  return nameFromBytes(await fsp.readlink(p, { encoding: 'buffer' }))
}

async function lstatOrNull (p: string | Buffer): Promise<Stats | null> {
  try {
    return await fsp.lstat(p)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/** Removes `p` and, if it is a directory, everything under it, at any
 *  depth: each directory is held by an fd and its entries named through it
 *  (fs.rm builds ever longer paths). Symlinks are removed, never followed. */
async function removeTree (p: string | Buffer): Promise<void> {
  const st = await lstatOrNull(p)
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
