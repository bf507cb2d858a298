// Image volume: one fixed-size file (a disk or VM image). Its records are
// block writes at offsets, fsync barriers, and a 'state' naming the whole
// image; path is always '' (records.ts). Anything else is not something an
// image can hold and is refused as a bad record. The size never changes:
// a write past the end is refused whole rather than growing the file.
import { promises as fsp, constants as fsc, type Stats } from 'node:fs'
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import type { PathState, Volume } from './volume.js'
import { checkRelPath } from './confine.js'
import { writePieces } from './write-pieces.js'

export async function openImageVolume (spec: VolumeSpec): Promise<Volume> {
  if (!Number.isSafeInteger(spec.size) || spec.size <= 0) {
    throw replError('USAGE', `image volume ${spec.name} has no size (got ${spec.size})`)
  }
  // O_CREAT without O_EXCL: a missing image is made (sparse) at its size; an
  // existing one must already be that size, or the copy is of another disk.
  const fh = await fsp.open(spec.path, fsc.O_RDWR | fsc.O_CREAT, 0o600)
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw replError('USAGE', `image volume ${spec.name}: ${spec.path} is not a regular file`)
    if (st.size === 0 && spec.size > 0) await fh.truncate(spec.size)
    else if (st.size !== spec.size) {
      throw replError('IMAGE_BOUNDS', `image volume ${spec.name}: ${spec.path} is ${st.size} bytes, the volume is ${spec.size}`,
        'point the volume at the right image, or resize the file to match')
    }
  } catch (err) {
    await fh.close()
    throw err
  }
  return new ImageVolume(spec, fh)
}

class ImageVolume implements Volume {
  constructor (readonly spec: VolumeSpec, private fh: fsp.FileHandle) {}

  private refuse (op: string, path = ''): never {
    checkRelPath(path)
    throw replError('BAD_RECORD', `image volume ${this.spec.name}: ${op}${path ? ` of ${JSON.stringify(path)}` : ''} is not valid on an image`)
  }

  /** Image records name the image itself, path ''. A hostile path still
   *  gets PATH_ESCAPE first, as on a directory volume. */
  private whole (op: string, path: string): void {
    if (checkRelPath(path) !== '') this.refuse(op, path)
  }

  private bounds (off: number, len: number): void {
    if (!Number.isSafeInteger(off) || off < 0 || off + len > this.spec.size) {
      throw replError('IMAGE_BOUNDS', `image volume ${this.spec.name}: ${len} bytes at offset ${off} run past the image end (${this.spec.size} bytes)`)
    }
  }

  async write (path: string, off: number, data: Uint8Array): Promise<void> {
    this.whole('write', path)
    this.bounds(off, data.length)
    // A synchronous pwrite: apply goes record by record, and a round trip
    // through libuv's pool per record left the secondary idle most of the
    // time (measured: 64% idle while 20k records waited to be applied).
    writePieces(this.fh.fd, data, off)
  }

  async read (path: string, off: number, len: number): Promise<Buffer> {
    this.whole('read', path)
    const n = Math.max(0, Math.min(len, this.spec.size - off))
    const buf = Buffer.alloc(n)
    const { bytesRead } = await this.fh.read(buf, 0, n, off)
    return buf.subarray(0, bytesRead)
  }

  async fsync (path: string): Promise<void> {
    this.whole('fsync', path)
    await this.fh.sync()
  }

  async lstat (path: string): Promise<Stats | null> {
    this.whole('lstat', path)
    return this.fh.stat()
  }

  /** The only state an image has is "a file of this size"; owner and mode
   *  are the operator's, not the peer's, so they are left alone. */
  async state (path: string, s: PathState): Promise<void> {
    this.whole('state', path)
    if (s.type !== 'file') this.refuse(`state ${s.type}`)
    if (s.size !== this.spec.size) {
      throw replError('IMAGE_BOUNDS', `image volume ${this.spec.name}: state says ${s.size} bytes, the image is ${this.spec.size}`)
    }
  }

  async truncate (path: string): Promise<void> { this.refuse('truncate', path) }
  async create (path: string): Promise<void> { this.refuse('create', path) }
  async mkdir (path: string): Promise<void> { this.refuse('mkdir', path) }
  async mknod (path: string): Promise<void> { this.refuse('mknod', path) }
  async unlink (path: string): Promise<void> { this.refuse('unlink', path) }
  async rmdir (path: string): Promise<void> { this.refuse('rmdir', path) }
  async rename (path: string, to: string): Promise<void> { checkRelPath(to); this.refuse('rename', path) }
  async link (path: string, to: string): Promise<void> { checkRelPath(to); this.refuse('link', path) }
  async symlink (path: string): Promise<void> { this.refuse('symlink', path) }
  async chmod (path: string): Promise<void> { this.refuse('chmod', path) }
  async chown (path: string): Promise<void> { this.refuse('chown', path) }
  async utimens (path: string): Promise<void> { this.refuse('utimens', path) }
  async setxattr (path: string): Promise<void> { this.refuse('setxattr', path) }
  async removexattr (path: string): Promise<void> { this.refuse('removexattr', path) }
  async getxattr (path: string): Promise<Buffer | null> { this.refuse('getxattr', path) }
  async readlink (path: string): Promise<string> { this.refuse('readlink', path) }

  async close (): Promise<void> {
    await this.fh.close()
  }
}
