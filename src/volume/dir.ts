// Directory volume: a file tree under a root, every path confined to it.
//
// Confinement, the I/O half (confine.ts did the syntax): the parent of a
// path is resolved with realpath and must lie inside the root's realpath,
// so no symlink on the way down leads out. The operation then acts on
// `<real parent>/<name>` and never follows the final name: opens use
// O_NOFOLLOW, ownership and times use lchown/lutimes, xattrs the l* calls,
// chmod refuses a symlink. Between the check and the call nothing else
// writes the copy (the secondary applies alone, in order), so the check
// cannot be raced by the records themselves.
import { promises as fsp, constants as fsc, type Stats } from 'node:fs'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import { checkRelPath, isInside, splitRelPath } from './confine.js'
import type { PathState, Volume } from './volume.js'
import { getXattr, removeXattr, setXattr } from './xattr.js'
import { nativeCore } from '../native/addon.js'

const permBits = 0o7777
// O_NONBLOCK: a fifo named by a record must fail (ENXIO), not hang apply.
const openWrite = fsc.O_WRONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK
const openRead = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK

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

  /** Backing path of a record path: the real parent plus the last name. */
  private async resolve (path: string): Promise<string> {
    checkRelPath(path)
    if (path === '') return this.root
    const { parent, name } = splitRelPath(path)
    const real = parent === '' ? this.root : await fsp.realpath(join(this.root, parent))
    if (!isInside(this.root, real)) {
      throw replError('PATH_ESCAPE', `volume ${this.spec.name}: ${JSON.stringify(path)} passes through a symlink that leads outside the volume`,
        'the copy holds a symlink out of its root; nothing was applied through it')
    }
    return join(real, name)
  }

  /** Resolve for operations that add or remove the name itself. */
  private async resolveEntry (path: string, op: string): Promise<string> {
    if (checkRelPath(path) === '') throw replError('BAD_RECORD', `volume ${this.spec.name}: cannot ${op} the volume root`)
    return this.resolve(path)
  }

  private async open (path: string, flags: number, mode?: number): Promise<fsp.FileHandle> {
    const abs = await this.resolve(path)
    if ((flags & fsc.O_CREAT) === 0) await this.checkDataNode(path, abs)
    try {
      return await fsp.open(abs, flags, mode)
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
  private async checkDataNode (path: string, abs: string): Promise<void> {
    const st = await fsp.lstat(abs).catch(() => null) // missing, or a symlink: open says so
    if (!st || st.isFile() || st.isDirectory() || st.isSymbolicLink()) return
    const what = st.isBlockDevice() ? 'a block device' : st.isCharacterDevice() ? 'a character device' : st.isFIFO() ? 'a fifo' : 'a socket'
    throw Object.assign(new Error(`EINVAL: volume ${this.spec.name}: ${JSON.stringify(path)} is ${what}, not a regular file; apply writes data only to regular files`), { code: 'EINVAL' })
  }

  private symlinkRefused (path: string): Error {
    return replError('PATH_ESCAPE', `volume ${this.spec.name}: ${JSON.stringify(path)} is a symlink; apply does not follow symlinks`)
  }

  // Open files for writes, by path: a stream of writes to one file (the
  // common case) costs one write each, not realpath + open + write + close.
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
    let done = 0
    while (done < data.length) {
      const { bytesWritten } = await fh.write(data, done, data.length - done, off + done)
      done += bytesWritten
    }
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
    await this.resolveEntry(path, 'create')
    const fh = await this.open(path, fsc.O_CREAT | fsc.O_EXCL | openWrite, mode & permBits)
    // Exact mode, whatever our umask: the copy must not depend on the daemon.
    try { await fh.chmod(mode & permBits) } finally { await fh.close() }
  }

  async mkdir (path: string, mode: number): Promise<void> {
    this.forget()
    const abs = await this.resolveEntry(path, 'mkdir')
    await fsp.mkdir(abs, mode & permBits)
    await fsp.chmod(abs, mode & permBits)
  }

  async mknod (path: string, mode: number, rdev: number): Promise<void> {
    this.forget()
    const type = mode & fsc.S_IFMT
    if (type === 0 || type === fsc.S_IFREG) return this.create(path, mode)
    if (type !== fsc.S_IFIFO && type !== fsc.S_IFSOCK && type !== fsc.S_IFCHR && type !== fsc.S_IFBLK) {
      throw replError('BAD_RECORD', `volume ${this.spec.name}: mknod of ${JSON.stringify(path)} with type ${type.toString(8)} refused`)
    }
    const abs = await this.resolveEntry(path, 'mknod')
    // Node has no mknod: the native core's (exact mode, whatever our umask).
    nativeCore().mknod(abs, type | (mode & permBits), rdev)
    await fsp.chmod(abs, mode & permBits)
  }

  async unlink (path: string): Promise<void> { this.forget(); await fsp.unlink(await this.resolveEntry(path, 'unlink')) }

  async rmdir (path: string): Promise<void> { this.forget(); await fsp.rmdir(await this.resolveEntry(path, 'rmdir')) }

  async rename (from: string, to: string): Promise<void> {
    this.forget()
    await fsp.rename(await this.resolveEntry(from, 'rename'), await this.resolveEntry(to, 'rename onto'))
  }

  async link (path: string, to: string): Promise<void> {
    this.forget()
    // link(2) on Linux does not follow a symlink named by its first argument.
    await fsp.link(await this.resolveEntry(path, 'link'), await this.resolveEntry(to, 'link onto'))
  }

  async symlink (path: string, target: string): Promise<void> {
    this.forget()
    await fsp.symlink(target, await this.resolveEntry(path, 'symlink'))
  }

  async chmod (path: string, mode: number): Promise<void> {
    const abs = await this.resolve(path)
    // Linux has no lchmod: refuse a symlink, then chmod the checked name.
    if ((await fsp.lstat(abs)).isSymbolicLink()) throw this.symlinkRefused(path)
    await fsp.chmod(abs, mode & permBits)
  }

  async chown (path: string, uid: number, gid: number): Promise<void> { await fsp.lchown(await this.resolve(path), uid, gid) }

  async utimens (path: string, atimeMs: number, mtimeMs: number, ns?: [number, number]): Promise<void> {
    const abs = await this.resolve(path)
    if (!ns) return fsp.lutimes(abs, utimeSeconds(atimeMs), utimeSeconds(mtimeMs))
    // Whole seconds from the ms figure less its sub-ms part: exact, since
    // the ms figure is within a µs of seconds*1000 + ns/1e6.
    const sec = (ms: number, n: number) => Math.round((ms - n / 1e6) / 1000)
    nativeCore().utimens(abs, sec(atimeMs, ns[0]), ns[0], sec(mtimeMs, ns[1]), ns[1])
  }

  async setxattr (path: string, name: string, value: Uint8Array): Promise<void> { await setXattr(await this.resolve(path), name, value) }

  async removexattr (path: string, name: string): Promise<void> { await removeXattr(await this.resolve(path), name) }

  async getxattr (path: string, name: string): Promise<Buffer | null> { return getXattr(await this.resolve(path), name) }

  async fsync (path: string): Promise<void> {
    const cached = this.writers.get(path)
    if (cached) return cached.sync()
    const fh = await this.open(path, openRead)
    try { await fh.sync() } finally { await fh.close() }
  }

  async lstat (path: string): Promise<Stats | null> {
    try {
      return await fsp.lstat(await this.resolve(path))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  async readlink (path: string): Promise<string> { return fsp.readlink(await this.resolve(path)) }

  async state (path: string, s: PathState): Promise<void> {
    this.forget()
    if (checkRelPath(path) === '' && s.type !== 'dir') {
      throw replError('BAD_RECORD', `volume ${this.spec.name}: the volume root can only be stated as a directory, not ${s.type}`)
    }
    const abs = await this.resolve(path)
    let cur = await this.lstat(path)
    const clear = async (): Promise<void> => {
      // fs.rm lstat()s as it goes: it removes symlinks, never follows them.
      if (cur) await fsp.rm(abs, { recursive: true, force: true })
      cur = null
    }
    switch (s.type) {
      case 'absent':
        return clear()
      case 'dir':
        if (cur && !cur.isDirectory()) await clear()
        if (!cur) await fsp.mkdir(abs, s.mode & permBits)
        break
      case 'symlink':
        if (cur && !(cur.isSymbolicLink() && await fsp.readlink(abs) === s.target)) await clear()
        if (!cur) await fsp.symlink(s.target, abs)
        break
      case 'file':
        if (cur && !cur.isFile()) await clear()
        if (!cur) await this.create(path, s.mode)
        if (s.whole) await this.truncate(path, 0) // rebuilt by the writes that follow
        await this.truncate(path, s.size)
        break
    }
    await this.setMeta(path, abs, s)
  }

  /** Sets mode and owner only where they differ, so a secondary running
   *  unprivileged can still apply states whose owner already matches. */
  private async setMeta (path: string, abs: string, s: PathState): Promise<void> {
    const st = await fsp.lstat(abs)
    if (!st.isSymbolicLink() && (st.mode & permBits) !== (s.mode & permBits)) await this.chmod(path, s.mode)
    if (st.uid !== s.uid || st.gid !== s.gid) await fsp.lchown(abs, s.uid, s.gid)
  }

  async close (): Promise<void> { this.forget() }
}
