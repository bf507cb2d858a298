// The FUSE operation table (libfuse's passthrough_hp assign_operations() in
// spirit): each op makes one backing call and replies an integer code.
// Mutating ops follow one pattern, in this order:
//   1. mark the part hot in the activity log (usually free: already hot),
//   2. do the backing op,
//   3. on success, `capture.record` fixes the record's place in the journal,
//   4. reply once the record is as durable as the mode promises.
// A failed backing op is replied with its errno and recorded nowhere.
import fs from 'node:fs'
import type { Record } from '../core/records.js'
import { Capture } from '../capture/capture.js'
import type { HotMark } from '../capture/activity-log.js'
import { Layout, type Place } from './layout.js'
import { EACCES, EBADF, ENOENT, ENOSPC, ENOTSUP, EPERM, toErrno } from './errno.js'
import { getXattr, listXattrs, removeXattr, setXattr } from './xattr.js'

type Cb = (code: number, value?: unknown) => void

interface Handle { fd: number, vol: number, rel: string, image: boolean, size: number }

const { O_CREAT, O_EXCL, O_RDWR, O_APPEND, O_DIRECT, O_TRUNC } = fs.constants
const O_ACCMODE = 3 // not exported by node: O_RDONLY | O_WRONLY | O_RDWR

export interface OpsContext {
  layout: Layout
  capture: Capture
  startedMs: number
  readOnly: boolean
}

export type OpTable = { [op: string]: unknown }

export function makeOps (ctx: OpsContext): OpTable {
  const { layout, capture } = ctx
  const handles = new Map<number, Handle>()
  let nextHandle = 1 // fuse-native: a handle of 0 means "none"

  const rootStat = () => ({
    mode: 0o40755, nlink: 2 + layout.spec.volumes.length, uid: 0, gid: 0, size: 4096,
    mtime: ctx.startedMs, atime: ctx.startedMs, ctime: ctx.startedMs, ino: 1, dev: 0, blksize: 4096, blocks: 8
  })

  /** Resolves a path to a volume place, or replies the errno for the rest. */
  function vplace (path: string, cb: Cb, rootErr = EPERM): Extract<Place, { at: 'volume' }> | null {
    const p = layout.place(path)
    if (p.at === 'volume') return p
    cb(p.at === 'root' ? rootErr : ENOENT)
    return null
  }

  /** A namespace/metadata op on one volume: guard, mark, run, record, reply. */
  function mutate (cb: Cb, vol: number, marks: HotMark[], run: (done: (err: unknown) => void) => void, rec: () => Record): void {
    if (ctx.readOnly) return cb(-30 /* EROFS */)
    const go = () => run(err => {
      if (err) { capture.abort(marks); return cb(toErrno(err)) }
      capture.record(rec(), marks).then(() => cb(0), e => cb(toErrno(e)))
    })
    const wait = capture.begin(marks)
    if (wait) wait.then(go, e => { capture.abort(marks); cb(toErrno(e)) })
    else go()
  }

  function imageRefuses (p: Extract<Place, { at: 'volume' }>, cb: Cb): boolean {
    if (p.vol.kind !== 'image') return false
    cb(EPERM) // an image volume is one fixed file: no namespace or metadata changes
    return true
  }

  const ops = {
    getattr (path: string, cb: Cb) {
      const p = layout.place(path)
      if (p.at === 'root') return cb(0, rootStat())
      if (p.at === 'none') return cb(ENOENT)
      fs.lstat(p.backing, (err, st) => err ? cb(toErrno(err)) : cb(0, st))
    },

    readdir (path: string, cb: Cb) {
      const p = layout.place(path)
      if (p.at === 'root') return cb(0, layout.names())
      if (p.at === 'none') return cb(ENOENT)
      fs.readdir(p.backing, (err, names) => err ? cb(toErrno(err)) : cb(0, names))
    },

    access (path: string, mode: number, cb: Cb) {
      const p = layout.place(path)
      if (p.at !== 'volume') return cb(p.at === 'root' ? 0 : ENOENT)
      fs.access(p.backing, mode, err => cb(err ? toErrno(err) : 0))
    },

    statfs (path: string, cb: Cb) {
      const vol = layout.spec.volumes[0]
      fs.statfs(vol.kind === 'dir' ? vol.path : vol.path.replace(/[^/]*$/, '') || '/', (err, s) => {
        if (err) return cb(toErrno(err))
        // fuse-native passes statfs as uint32: scale the block size up until
        // the counts fit (df multiplies them back).
        let scale = 1
        while (s.blocks / scale > 0xffffffff) scale *= 2
        cb(0, {
          bsize: s.bsize, frsize: s.bsize * scale, blocks: Math.floor(s.blocks / scale), bfree: Math.floor(s.bfree / scale),
          bavail: Math.floor(s.bavail / scale), files: Math.min(s.files, 0xffffffff), ffree: Math.min(s.ffree, 0xffffffff),
          favail: Math.min(s.ffree, 0xffffffff), fsid: 0, flag: 0, namemax: 255
        })
      })
    },

    open (path: string, flags: number, cb: Cb) {
      const p = vplace(path, cb, EACCES)
      if (!p) return
      if (ctx.readOnly && (flags & O_ACCMODE) !== 0) return cb(-30)
      // Writes go exactly where the kernel says: no O_APPEND (pwrite would
      // ignore the offset and the record would lie); no O_DIRECT (our
      // buffers are not aligned; the kernel already bypassed its cache).
      const backingFlags = flags & ~(O_APPEND | O_DIRECT | O_CREAT | O_EXCL)
      const truncating = (flags & O_TRUNC) !== 0 && (flags & O_ACCMODE) !== 0
      const finish = (fd: number) => {
        const h = nextHandle++
        handles.set(h, { fd, vol: p.vol.num, rel: p.rel, image: p.vol.kind === 'image', size: p.vol.size })
        cb(0, h)
      }
      if (!truncating) return fs.open(p.backing, backingFlags, (err, fd) => err ? cb(toErrno(err)) : finish(fd))
      if (p.vol.kind === 'image') return cb(EPERM)
      const marks = Capture.metaMarks(p.vol.num, p.rel)
      let fd = -1
      mutate(code => code === 0 ? finish(fd) : cb(code), p.vol.num, marks,
        done => fs.open(p.backing, backingFlags, (err, f) => { fd = f; done(err) }),
        () => ({ kind: 'truncate', vol: p.vol.num, path: p.rel, size: 0 }))
    },

    create (path: string, mode: number, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      let fd = -1
      mutate(code => {
        if (code !== 0) return cb(code)
        const h = nextHandle++
        handles.set(h, { fd, vol: p.vol.num, rel: p.rel, image: false, size: 0 })
        cb(0, h)
      }, p.vol.num, Capture.pathMarks(p.vol.num, p.rel),
      done => fs.open(p.backing, O_CREAT | O_EXCL | O_RDWR, mode & 0o7777, (err, f) => { fd = f; done(err) }),
      () => ({ kind: 'create', vol: p.vol.num, path: p.rel, mode: mode & 0o7777 }))
    },

    read (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      fs.read(h.fd, buf, 0, len, pos, (err, n) => cb(err ? toErrno(err) : n))
    },

    write (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      if (ctx.readOnly) return cb(-30)
      if (h.image) {
        // A block device's end: nothing is written past it (documented errno).
        if (pos >= h.size) return cb(ENOSPC)
        len = Math.min(len, h.size - pos)
      }
      // The one copy: the kernel's buffer is detached when we reply, and the
      // record outlives the reply (group commit, sender).
      const data = Buffer.allocUnsafe(len)
      buf.copy(data, 0, 0, len)
      const key = `${h.vol}\0${h.rel}`
      const marks = Capture.regionMarks(h.vol, h.rel, pos, len)
      const run = (unlock: () => void) => {
        fs.write(h.fd, data, 0, len, pos, (err, n) => {
          if (err) { unlock(); capture.abort(marks); return cb(toErrno(err)) }
          const done = capture.record({ kind: 'write', vol: h.vol, path: h.rel, off: pos, data: n === len ? data : data.subarray(0, n) }, marks)
          unlock() // the sequence is fixed: overlapping writers may go on
          done.then(() => cb(n), e => cb(toErrno(e)))
        })
      }
      const start = (unlock: () => void) => {
        const wait = capture.begin(marks)
        if (wait) wait.then(() => run(unlock), e => { unlock(); capture.abort(marks); cb(toErrno(e)) })
        else run(unlock)
      }
      const unlock = capture.locks.tryAcquire(key, pos, pos + len)
      if (unlock) start(unlock)
      else void capture.locks.acquire(key, pos, pos + len).then(start)
    },

    truncate (path: string, size: number, cb: Cb) {
      const p = vplace(path, cb, EACCES)
      if (!p) return
      truncateAt(p.vol.num, p.rel, p.vol.kind === 'image', p.vol.size, size, cb,
        done => fs.truncate(p.backing, size, done))
    },

    ftruncate (path: string, fh: number, size: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      truncateAt(h.vol, h.rel, h.image, h.size, size, cb, done => fs.ftruncate(h.fd, size, done))
    },

    flush (path: string, fh: number, cb: Cb) { cb(0) },

    fsync (path: string, datasync: number, fh: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(EBADF)
      // The backing file and the journal reach the disk together; the fsync
      // record tells the secondary to do the same at this point of history.
      const backing = new Promise<void>((resolve, reject) =>
        (datasync ? fs.fdatasync : fs.fsync)(h.fd, err => err ? reject(err) : resolve()))
      const marks: HotMark[] = []
      const recorded = ctx.readOnly ? Promise.resolve() : capture.record({ kind: 'fsync', vol: h.vol, path: h.rel }, marks)
      Promise.all([backing, recorded, capture.barrier()]).then(() => cb(0), e => cb(toErrno(e)))
    },

    fsyncdir (path: string, datasync: number, fh: number, cb: Cb) {
      capture.barrier().then(() => cb(0), e => cb(toErrno(e)))
    },

    release (path: string, fh: number, cb: Cb) {
      const h = handles.get(fh)
      if (!h) return cb(0)
      handles.delete(fh)
      fs.close(h.fd, err => cb(err ? toErrno(err) : 0))
    },

    opendir (path: string, flags: number, cb: Cb) { cb(0, 0) },
    releasedir (path: string, fh: number, cb: Cb) { cb(0) },

    readlink (path: string, cb: Cb) {
      const p = vplace(path, cb, ENOENT)
      if (!p) return
      fs.readlink(p.backing, (err, target) => err ? cb(toErrno(err)) : cb(0, target))
    },

    mkdir (path: string, mode: number, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      mutate(cb, p.vol.num, Capture.pathMarks(p.vol.num, p.rel),
        done => fs.mkdir(p.backing, mode & 0o7777, done),
        () => ({ kind: 'mkdir', vol: p.vol.num, path: p.rel, mode: mode & 0o7777 }))
    },

    unlink (path: string, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      mutate(cb, p.vol.num, Capture.pathMarks(p.vol.num, p.rel),
        done => fs.unlink(p.backing, done),
        () => ({ kind: 'unlink', vol: p.vol.num, path: p.rel }))
    },

    rmdir (path: string, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      if (p.rel === '') return cb(EPERM) // the volume root itself
      mutate(cb, p.vol.num, Capture.pathMarks(p.vol.num, p.rel),
        done => fs.rmdir(p.backing, done),
        () => ({ kind: 'rmdir', vol: p.vol.num, path: p.rel }))
    },

    rename (src: string, dest: string, cb: Cb) {
      twoPaths(src, dest, cb, (a, b) => mutate(cb, a.vol.num, Capture.pathMarks(a.vol.num, a.rel, b.rel),
        done => fs.rename(a.backing, b.backing, done),
        () => ({ kind: 'rename', vol: a.vol.num, path: a.rel, to: b.rel })))
    },

    link (src: string, dest: string, cb: Cb) {
      twoPaths(src, dest, cb, (a, b) => mutate(cb, a.vol.num, Capture.pathMarks(a.vol.num, b.rel),
        done => fs.link(a.backing, b.backing, done),
        () => ({ kind: 'link', vol: a.vol.num, path: a.rel, to: b.rel })))
    },

    symlink (target: string, path: string, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      mutate(cb, p.vol.num, Capture.pathMarks(p.vol.num, p.rel),
        done => fs.symlink(target, p.backing, done),
        () => ({ kind: 'symlink', vol: p.vol.num, path: p.rel, target }))
    },

    chmod (path: string, mode: number, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      mutate(cb, p.vol.num, Capture.metaMarks(p.vol.num, p.rel),
        done => fs.chmod(p.backing, mode & 0o7777, done),
        () => ({ kind: 'chmod', vol: p.vol.num, path: p.rel, mode: mode & 0o7777 }))
    },

    chown (path: string, uid: number, gid: number, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      mutate(cb, p.vol.num, Capture.metaMarks(p.vol.num, p.rel),
        done => fs.lchown(p.backing, uid, gid, done),
        () => ({ kind: 'chown', vol: p.vol.num, path: p.rel, uid, gid }))
    },

    utimens (path: string, atime: number, mtime: number, cb: Cb) {
      const p = vplace(path, cb)
      if (!p || imageRefuses(p, cb)) return
      // Our patched binding (scripts/patch-fuse-native.mjs) sends UTIME_OMIT
      // as 2^64-1: keep that time as it is, and record the value kept.
      const omitted = (t: number) => t >= 2 ** 63
      let times = { atimeMs: atime, mtimeMs: mtime }
      mutate(cb, p.vol.num, Capture.metaMarks(p.vol.num, p.rel),
        done => {
          // +0.5 µs: libuv truncates the double to µs; without it .123 s lands as .122999.
          const set = () => fs.lutimes(p.backing, (times.atimeMs + 0.0005) / 1000, (times.mtimeMs + 0.0005) / 1000, done)
          if (!omitted(atime) && !omitted(mtime)) return set()
          fs.lstat(p.backing, (err, st) => {
            if (err) return done(err)
            times = { atimeMs: omitted(atime) ? st.atimeMs : atime, mtimeMs: omitted(mtime) ? st.mtimeMs : mtime }
            set()
          })
        },
        () => ({ kind: 'utimens', vol: p.vol.num, path: p.rel, ...times }))
    },

    getxattr (path: string, name: string, position: number, cb: Cb) {
      const p = layout.place(path)
      if (p.at !== 'volume') return cb(p.at === 'root' ? -61 : ENOENT)
      getXattr(p.backing, name).then(v => cb(0, v), e => cb(toErrno(e)))
    },

    listxattr (path: string, cb: Cb) {
      const p = layout.place(path)
      if (p.at !== 'volume') return cb(p.at === 'root' ? 0 : ENOENT, [])
      listXattrs(p.backing).then(names => cb(0, names), e => cb(toErrno(e)))
    },

    setxattr (path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb) {
      const p = vplace(path, cb, ENOTSUP)
      if (!p) return
      if (p.vol.kind === 'image') return cb(ENOTSUP)
      const copy = Buffer.from(value) // kernel memory: copied before any await
      mutate(cb, p.vol.num, Capture.metaMarks(p.vol.num, p.rel),
        done => setXattr(p.backing, name, copy, flags).then(() => done(null), done),
        () => ({ kind: 'setxattr', vol: p.vol.num, path: p.rel, name, value: copy, flags }))
    },

    removexattr (path: string, name: string, cb: Cb) {
      const p = vplace(path, cb, ENOTSUP)
      if (!p) return
      if (p.vol.kind === 'image') return cb(ENOTSUP)
      mutate(cb, p.vol.num, Capture.metaMarks(p.vol.num, p.rel),
        done => removeXattr(p.backing, name).then(() => done(null), done),
        () => ({ kind: 'removexattr', vol: p.vol.num, path: p.rel, name }))
    }
  }

  function truncateAt (vol: number, rel: string, image: boolean, imageSize: number, size: number, cb: Cb,
    run: (done: (err: unknown) => void) => void): void {
    if (image) return cb(size === imageSize ? 0 : EPERM) // fixed size: a resize is refused
    const key = `${vol}\0${rel}`
    const marks = Capture.metaMarks(vol, rel)
    // A truncate reorders against any write beyond the new size.
    void capture.locks.acquire(key, size, Number.MAX_SAFE_INTEGER).then(unlock =>
      mutate(code => { unlock(); cb(code) }, vol, marks, done => run(err => { done(err) }),
        () => ({ kind: 'truncate', vol, path: rel, size })))
  }

  function twoPaths (src: string, dest: string, cb: Cb, go: (a: Extract<Place, { at: 'volume' }>, b: Extract<Place, { at: 'volume' }>) => void): void {
    const a = vplace(src, cb)
    if (!a) return
    const b = layout.place(dest)
    if (b.at !== 'volume') return cb(b.at === 'root' ? EPERM : -18 /* EXDEV */)
    if (a.vol !== b.vol) return cb(-18) // across volumes: EXDEV, so mv copies
    if (a.vol.kind === 'image' || a.rel === '' || b.rel === '') return cb(EPERM)
    go(a, b)
  }

  return ops
}
