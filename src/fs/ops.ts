// The FUSE operation table (libfuse's passthrough_hp assign_operations() in
// spirit): each op makes one backing call and replies an integer code.
//
// Backing calls are synchronous, on purpose. The event loop is the FUSE
// server: a thread-pool round trip per op cost more than the syscall itself
// (4 KiB writes: 3.6k IOPS async vs ~20k sync, native-notes/threading.md),
// and doing the backing op and `capture.record` in one synchronous step is
// what makes the journal order the backing store's order, with any number
// of kernel threads in flight. Only fsync, which waits for the disk, is
// asynchronous. The backing store is never this mount, so no deadlock.
//
// Mutating ops: mark the part hot (activity log), do the backing op, on
// success record it, reply once the record is as durable as the mode
// promises. A failed backing op is replied with its errno, recorded nowhere.
import fs from 'node:fs'
import type { Record } from '../core/records.js'
import { Capture } from '../capture/capture.js'
import type { HotMark } from '../capture/activity-log.js'
import { Layout, type Place } from './layout.js'
import { EACCES, EBADF, ENODATA, ENOENT, ENOSPC, ENOTSUP, EPERM, EROFS, EXDEV, toErrno } from './errno.js'
import { getXattrSync, listXattrSync, removeXattrSync, setXattrSync } from '../volume/xattr.js'

type Cb = (code: number, value?: unknown) => void
type VolPlace = Extract<Place, { at: 'volume' }>
interface Handle { fd: number, vol: number, rel: string, image: boolean, size: number }

const { O_CREAT, O_EXCL, O_RDWR, O_APPEND, O_DIRECT, O_TRUNC } = fs.constants
const O_ACCMODE = 3 // not exported by node: O_RDONLY | O_WRONLY | O_RDWR
const timeOmitted = 2 ** 63 // our patched binding sends UTIME_OMIT as 2^64-1

export interface OpsContext {
  layout: Layout
  capture: Capture | null // null: a read-only view (a secondary's copies)
  startedMs: number
  readOnly: boolean
}

export type OpTable = { [op: string]: unknown }

export function makeOps (ctx: OpsContext): OpTable {
  const { layout } = ctx
  // Every use of `capture` below comes after a read-only check.
  const capture = ctx.capture as Capture
  const handles = new Map<number, Handle>()
  let nextHandle = 1 // fuse-native: a handle of 0 means "none"

  const rootStat = () => ({
    mode: 0o40755, nlink: 2 + layout.spec.volumes.length, uid: 0, gid: 0, size: 4096,
    mtime: ctx.startedMs, atime: ctx.startedMs, ctime: ctx.startedMs, ino: 1, dev: 0, blksize: 4096, blocks: 8
  })

  /** The volume place of a path, or null after replying the errno. */
  function vplace (path: string, cb: Cb, rootErr = EPERM): VolPlace | null {
    const p = layout.place(path)
    if (p.at === 'volume') return p
    cb(p.at === 'root' ? rootErr : ENOENT)
    return null
  }

  /** A place for a namespace or metadata change: not on an image volume. */
  function nsplace (path: string, cb: Cb): VolPlace | null {
    const p = vplace(path, cb)
    if (p && p.vol.kind === 'image') { cb(EPERM); return null } // one fixed file
    return p
  }

  /** Mark, run the backing op, record, reply. `run` returns the record. */
  function mutate (cb: Cb, marks: HotMark[], run: () => Record, value?: () => number): void {
    if (ctx.readOnly) return cb(EROFS)
    capture.admit(() => mutateNow(cb, marks, run, value))
  }

  function mutateNow (cb: Cb, marks: HotMark[], run: () => Record, value?: () => number): void {
    capture.begin(marks)
    let rec: Record
    try {
      rec = run()
    } catch (err) {
      capture.abort(marks)
      return cb(toErrno(err))
    }
    capture.record(rec, marks, value ? () => cb(0, value()) : () => cb(0))
  }

  function addHandle (fd: number, p: VolPlace): number {
    const h = nextHandle++
    handles.set(h, { fd, vol: p.vol.num, rel: p.rel, image: p.vol.kind === 'image', size: p.vol.size })
    return h
  }

  function reply (cb: Cb, f: () => unknown): void {
    let v: unknown
    try { v = f() } catch (err) { return cb(toErrno(err)) }
    cb(0, v)
  }

  return {
    getattr (path: string, cb: Cb) {
      const p = layout.place(path)
      if (p.at === 'root') return cb(0, rootStat())
      if (p.at === 'none') return cb(ENOENT)
      reply(cb, () => fs.lstatSync(p.backing))
    },

    readdir (path: string, cb: Cb) {
      const p = layout.place(path)
      if (p.at === 'root') return cb(0, layout.names())
      if (p.at === 'none') return cb(ENOENT)
      reply(cb, () => fs.readdirSync(p.backing))
    },

    access (path: string, mode: number, cb: Cb) {
      const p = layout.place(path)
      if (p.at !== 'volume') return cb(p.at === 'root' ? 0 : ENOENT)
      reply(cb, () => fs.accessSync(p.backing, mode))
    },

    statfs (path: string, cb: Cb) {
      const vol = layout.spec.volumes[0]
      reply(cb, () => {
        const s = fs.statfsSync(vol.kind === 'dir' ? vol.path : vol.path.replace(/[^/]*$/, '') || '/')
        // fuse-native passes statfs as uint32: scale the fragment size up
        // until the counts fit (df multiplies them back).
        let k = 1
        while (s.blocks / k > 0xffffffff) k *= 2
        const u32 = (n: number) => Math.min(n, 0xffffffff)
        return {
          bsize: s.bsize, frsize: s.bsize * k, blocks: Math.floor(s.blocks / k), bfree: Math.floor(s.bfree / k),
          bavail: Math.floor(s.bavail / k), files: u32(s.files), ffree: u32(s.ffree), favail: u32(s.ffree), fsid: 0, flag: 0, namemax: 255
        }
      })
    },

    open (path: string, flags: number, cb: Cb) {
      const p = vplace(path, cb, EACCES)
      if (!p) return
      const writing = (flags & O_ACCMODE) !== 0
      if (ctx.readOnly && writing) return cb(EROFS)
      // Writes go exactly where the kernel says: no O_APPEND (pwrite would
      // ignore the offset and the record would lie); no O_DIRECT (our
      // buffers are not aligned; the kernel already bypassed its cache).
      const backingFlags = flags & ~(O_APPEND | O_DIRECT | O_CREAT | O_EXCL)
      if (!(writing && (flags & O_TRUNC))) return reply(cb, () => addHandle(fs.openSync(p.backing, backingFlags), p))
      if (p.vol.kind === 'image') return cb(EPERM) // cannot be resized
      let fd = -1
      mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
        fd = fs.openSync(p.backing, backingFlags)
        return { kind: 'truncate', vol: p.vol.num, path: p.rel, size: 0 }
      }, () => addHandle(fd, p))
    },

    create (path: string, mode: number, cb: Cb) {
      const p = nsplace(path, cb)
      if (!p) return
      let fd = -1
      mutate(cb, Capture.pathMarks(p.vol.num, p.rel), () => {
        fd = fs.openSync(p.backing, O_CREAT | O_EXCL | O_RDWR, mode & 0o7777)
        return { kind: 'create', vol: p.vol.num, path: p.rel, mode: mode & 0o7777 }
      }, () => addHandle(fd, p))
    },

    read (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      let n: number
      try { n = fs.readSync(h.fd, buf, 0, len, pos) } catch (err) { return cb(toErrno(err)) }
      cb(n)
    },

    write (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      if (ctx.readOnly) return cb(EROFS)
      if (h.image) {
        // A block device's end: nothing is written past it (documented errno).
        if (pos >= h.size) return cb(ENOSPC)
        len = Math.min(len, h.size - pos)
      }
      // The one copy: the kernel's buffer is detached when we reply, and the
      // record outlives the reply (group commit, sender).
      const data = Buffer.allocUnsafe(len)
      buf.copy(data, 0, 0, len)
      const marks = Capture.regionMarks(h.vol, h.rel, pos, len)
      capture.admit(() => {
        capture.begin(marks)
        let n: number
        try {
          n = fs.writeSync(h.fd, data, 0, len, pos)
        } catch (err) {
          capture.abort(marks)
          return cb(toErrno(err))
        }
        capture.record({ kind: 'write', vol: h.vol, path: h.rel, off: pos, data: n === len ? data : data.subarray(0, n) }, marks, () => cb(n))
      })
    },

    truncate (path: string, size: number, cb: Cb) {
      const p = vplace(path, cb, EACCES)
      if (!p) return
      if (p.vol.kind === 'image') return cb(size === p.vol.size ? 0 : EPERM) // fixed size
      mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
        fs.truncateSync(p.backing, size)
        return { kind: 'truncate', vol: p.vol.num, path: p.rel, size }
      })
    },

    ftruncate (path: string, fh: number, size: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      if (h.image) return cb(size === h.size ? 0 : EPERM)
      mutate(cb, Capture.metaMarks(h.vol, h.rel), () => {
        fs.ftruncateSync(h.fd, size)
        return { kind: 'truncate', vol: h.vol, path: h.rel, size }
      })
    },

    flush (path: string, fh: number, cb: Cb) { cb(0) },

    fsync (path: string, datasync: number, fh: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      // The backing file and the journal reach the disk together; the fsync
      // record tells the secondary to do the same at this point of history.
      const backing = new Promise<void>((resolve, reject) =>
        (datasync ? fs.fdatasync : fs.fsync)(h.fd, err => err ? reject(err) : resolve()))
      if (ctx.readOnly) return void backing.then(() => cb(0), e => cb(toErrno(e)))
      const recorded = new Promise<void>(resolve => capture.record({ kind: 'fsync', vol: h.vol, path: h.rel }, [], resolve))
      Promise.all([backing, recorded, capture.barrier()]).then(() => cb(0), e => cb(toErrno(e)))
    },

    fsyncdir (path: string, datasync: number, fh: number, cb: Cb) {
      if (ctx.readOnly) return cb(0)
      capture.barrier().then(() => cb(0), e => cb(toErrno(e)))
    },

    release (path: string, fh: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(0)
      handles.delete(fh)
      reply(cb, () => fs.closeSync(h.fd))
    },

    opendir (path: string, flags: number, cb: Cb) { cb(0, 0) },
    releasedir (path: string, fh: number, cb: Cb) { cb(0) },

    readlink (path: string, cb: Cb) {
      const p = vplace(path, cb, ENOENT)
      if (p) reply(cb, () => fs.readlinkSync(p.backing))
    },

    mkdir (path: string, mode: number, cb: Cb) {
      const p = nsplace(path, cb)
      if (p) {
        mutate(cb, Capture.pathMarks(p.vol.num, p.rel), () => {
          fs.mkdirSync(p.backing, mode & 0o7777)
          return { kind: 'mkdir', vol: p.vol.num, path: p.rel, mode: mode & 0o7777 }
        })
      }
    },

    unlink (path: string, cb: Cb) {
      const p = nsplace(path, cb)
      if (p) {
        mutate(cb, Capture.pathMarks(p.vol.num, p.rel), () => {
          fs.unlinkSync(p.backing)
          return { kind: 'unlink', vol: p.vol.num, path: p.rel }
        })
      }
    },

    rmdir (path: string, cb: Cb) {
      const p = nsplace(path, cb)
      if (!p) return
      if (p.rel === '') return cb(EPERM) // the volume root itself
      mutate(cb, Capture.pathMarks(p.vol.num, p.rel), () => {
        fs.rmdirSync(p.backing)
        return { kind: 'rmdir', vol: p.vol.num, path: p.rel }
      })
    },

    rename (src: string, dest: string, cb: Cb) {
      twoPaths(src, dest, cb, (a, b) => mutate(cb, Capture.pathMarks(a.vol.num, a.rel, b.rel), () => {
        fs.renameSync(a.backing, b.backing)
        return { kind: 'rename', vol: a.vol.num, path: a.rel, to: b.rel }
      }))
    },

    link (src: string, dest: string, cb: Cb) {
      twoPaths(src, dest, cb, (a, b) => mutate(cb, Capture.pathMarks(a.vol.num, b.rel), () => {
        fs.linkSync(a.backing, b.backing)
        return { kind: 'link', vol: a.vol.num, path: a.rel, to: b.rel }
      }))
    },

    symlink (target: string, path: string, cb: Cb) {
      const p = nsplace(path, cb)
      if (p) {
        mutate(cb, Capture.pathMarks(p.vol.num, p.rel), () => {
          fs.symlinkSync(target, p.backing)
          return { kind: 'symlink', vol: p.vol.num, path: p.rel, target }
        })
      }
    },

    chmod (path: string, mode: number, cb: Cb) {
      const p = nsplace(path, cb)
      if (p) {
        mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
          fs.chmodSync(p.backing, mode & 0o7777)
          return { kind: 'chmod', vol: p.vol.num, path: p.rel, mode: mode & 0o7777 }
        })
      }
    },

    chown (path: string, uid: number, gid: number, cb: Cb) {
      const p = nsplace(path, cb)
      if (p) {
        mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
          fs.lchownSync(p.backing, uid, gid)
          return { kind: 'chown', vol: p.vol.num, path: p.rel, uid, gid }
        })
      }
    },

    utimens (path: string, atime: number, mtime: number, cb: Cb) {
      const p = nsplace(path, cb)
      if (!p) return
      mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
        // UTIME_OMIT keeps a time as it is; the record carries the value kept.
        if (atime >= timeOmitted || mtime >= timeOmitted) {
          const st = fs.lstatSync(p.backing)
          if (atime >= timeOmitted) atime = st.atimeMs
          if (mtime >= timeOmitted) mtime = st.mtimeMs
        }
        // +0.5 µs: libuv truncates the double to µs; without it .123 s lands as .122999.
        fs.lutimesSync(p.backing, (atime + 0.0005) / 1000, (mtime + 0.0005) / 1000)
        return { kind: 'utimens', vol: p.vol.num, path: p.rel, atimeMs: atime, mtimeMs: mtime }
      })
    },

    getxattr (path: string, name: string, position: number, cb: Cb) {
      const p = layout.place(path)
      if (p.at !== 'volume') return cb(p.at === 'root' ? ENODATA : ENOENT)
      // (the kernel asks for security.capability before every write)
      reply(cb, () => getXattrSync(p.backing, name))
    },

    listxattr (path: string, cb: Cb) {
      const p = layout.place(path)
      if (p.at !== 'volume') return cb(p.at === 'root' ? 0 : ENOENT, [])
      reply(cb, () => listXattrSync(p.backing))
    },

    setxattr (path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb) {
      const p = vplace(path, cb, ENOTSUP)
      if (!p) return
      if (p.vol.kind === 'image') return cb(ENOTSUP)
      const copy = Buffer.from(value) // kernel memory: the record outlives the reply
      mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
        setXattrSync(p.backing, name, copy, flags)
        return { kind: 'setxattr', vol: p.vol.num, path: p.rel, name, value: copy, flags }
      })
    },

    removexattr (path: string, name: string, cb: Cb) {
      const p = vplace(path, cb, ENOTSUP)
      if (!p) return
      if (p.vol.kind === 'image') return cb(ENOTSUP)
      mutate(cb, Capture.metaMarks(p.vol.num, p.rel), () => {
        removeXattrSync(p.backing, name)
        return { kind: 'removexattr', vol: p.vol.num, path: p.rel, name }
      })
    }
  }

  /** rename/link: both names in one directory volume (else EXDEV, so mv copies). */
  function twoPaths (src: string, dest: string, cb: Cb, go: (a: VolPlace, b: VolPlace) => void): void {
    const a = vplace(src, cb)
    if (!a) return
    const b = layout.place(dest)
    if (b.at !== 'volume') return cb(b.at === 'root' ? EPERM : EXDEV)
    if (a.vol !== b.vol) return cb(EXDEV)
    if (a.vol.kind === 'image' || a.rel === '' || b.rel === '') return cb(EPERM)
    go(a, b)
  }
}
