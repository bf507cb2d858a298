// Instrumented passthrough FUSE server for native-notes experiments.
// Usage: node server.cjs <mnt> <backing> <logfile> [optsJSON]
// Env knobs:
//   DELAY_<OP>=ms     delay the handler of <op> (e.g. DELAY_RENAME=3000, DELAY_WRITE=50)
//   KEEP_WRITE_BUF=1  keep a reference to the write Buffer and log its length after cb
//   BAD_UNLINK=null|error   answer unlink with cb(null) / cb(new Error('x'))
//   READDIR_MODE=nodots|dots|stats   what readdir returns (default: nodots, no stats)
//   STATFS_MODE=real|scaled|huge
// Logs one JSON line per event to <logfile>: {t, ev:'start'|'end', op, args, inflight}
'use strict'
const Fuse = require(process.env.FUSE_NATIVE || '/work/main/node_modules/fuse-native')
const fs = require('fs')
const path = require('path')

const [mnt, backing, logfile, optsJson] = process.argv.slice(2)
const extra = optsJson ? JSON.parse(optsJson) : {}
const logFd = fs.openSync(logfile, 'a')
const ctlFile = path.join(path.dirname(logfile), 'ctl.json') // runtime override of DELAY_* knobs
const t0 = process.hrtime.bigint()
let inflight = 0
let maxInflight = 0
function log (obj) {
  obj.t = Number((process.hrtime.bigint() - t0) / 1000n) / 1000 // ms
  fs.writeSync(logFd, JSON.stringify(obj) + '\n')
}
const B = p => path.join(backing, p)
const errno = e => (e && typeof e.errno === 'number') ? e.errno : Fuse.EIO

function wrap (op, fn) {
  return function (...args) {
    const cb = args.pop()
    const shown = args.map(a => Buffer.isBuffer(a) ? `<buf ${a.length}>` : a)
    inflight++
    if (inflight > maxInflight) maxInflight = inflight
    log({ ev: 'start', op, args: shown, inflight })
    let ctl = {}
    try { ctl = JSON.parse(fs.readFileSync(ctlFile, 'utf8')) } catch (_) {}
    const key = 'DELAY_' + op.toUpperCase()
    const delay = Number(ctl[key] ?? process.env[key] ?? 0)
    const run = () => fn(...args, (...res) => {
      inflight--
      log({ ev: 'end', op, args: shown, res: res.map(r => Buffer.isBuffer(r) ? `<buf ${r.length}>` : (r instanceof Error ? 'Error:' + r.message : r)), inflight })
      cb(...res)
    })
    if (delay) setTimeout(run, delay)
    else run()
  }
}

function statOut (st) {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, dev: st.dev, nlink: st.nlink, ino: st.ino, rdev: st.rdev, blksize: st.blksize, blocks: st.blocks, atime: st.atime, mtime: st.mtime, ctime: st.ctime }
}

const ops = {
  init: cb => { log({ ev: 'init' }); cb(0) },
  getattr: wrap('getattr', (p, cb) => fs.lstat(B(p), (e, st) => e ? cb(errno(e)) : cb(0, statOut(st)))),
  fgetattr: wrap('fgetattr', (p, fd, cb) => fs.lstat(B(p), (e, st) => e ? cb(errno(e)) : cb(0, statOut(st)))),
  readdir: wrap('readdir', (p, cb) => fs.readdir(B(p), (e, names) => {
    if (e) return cb(errno(e))
    const mode = process.env.READDIR_MODE || 'nodots'
    if (mode === 'dots' || mode === 'dotsstats') names = ['.', '..', ...names]
    if (mode === 'stats' || mode === 'dotsstats') {
      const stats = names.map(n => statOut(fs.lstatSync(B(path.join(p, n)))))
      return cb(0, names, stats)
    }
    cb(0, names)
  })),
  open: wrap('open', (p, flags, cb) => fs.open(B(p), flags & ~0o100000 /* keep */, (e, fd) => e ? cb(errno(e)) : cb(0, fd))),
  create: wrap('create', (p, mode, cb) => fs.open(B(p), 'w', mode, (e, fd) => e ? cb(errno(e)) : cb(0, fd))),
  read: wrap('read', (p, fd, buf, len, pos, cb) => fs.read(fd, buf, 0, len, pos, (e, n) => e ? cb(errno(e)) : cb(n))),
  write: wrap('write', (p, fd, buf, len, pos, cb) => fs.write(fd, buf, 0, len, pos, (e, n) => {
    if (process.env.KEEP_WRITE_BUF) {
      const kept = buf
      const before = kept.length
      cb(e ? errno(e) : n)
      setImmediate(() => {
        let byteLen = 'n/a'
        try { byteLen = kept.buffer.byteLength } catch (x) { byteLen = 'throws ' + x.message }
        let readOk
        try { readOk = kept[0] } catch (x) { readOk = 'throws ' + x.message }
        log({ ev: 'keptbuf', lenBefore: before, lenAfter: kept.length, abByteLength: byteLen, firstByte: readOk })
      })
      return
    }
    e ? cb(errno(e)) : cb(n)
  })),
  release: wrap('release', (p, fd, cb) => fs.close(fd, e => cb(e ? errno(e) : 0))),
  flush: wrap('flush', (p, fd, cb) => cb(0)),
  fsync: wrap('fsync', (p, datasync, fd, cb) => fs.fsync(fd, e => cb(e ? errno(e) : 0))),
  truncate: wrap('truncate', (p, size, cb) => fs.truncate(B(p), size, e => cb(e ? errno(e) : 0))),
  ftruncate: wrap('ftruncate', (p, fd, size, cb) => fs.ftruncate(fd, size, e => cb(e ? errno(e) : 0))),
  unlink: wrap('unlink', (p, cb) => {
    if (process.env.BAD_UNLINK === 'null') return cb(null)
    if (process.env.BAD_UNLINK === 'error') return cb(new Error('x'))
    fs.unlink(B(p), e => cb(e ? errno(e) : 0))
  }),
  rename: wrap('rename', (s, d, cb) => fs.rename(B(s), B(d), e => cb(e ? errno(e) : 0))),
  mkdir: wrap('mkdir', (p, mode, cb) => fs.mkdir(B(p), mode, e => cb(e ? errno(e) : 0))),
  rmdir: wrap('rmdir', (p, cb) => fs.rmdir(B(p), e => cb(e ? errno(e) : 0))),
  symlink: wrap('symlink', (target, p, cb) => fs.symlink(target, B(p), e => cb(e ? errno(e) : 0))),
  readlink: wrap('readlink', (p, cb) => fs.readlink(B(p), (e, l) => e ? cb(errno(e)) : cb(0, l))),
  link: wrap('link', (s, d, cb) => fs.link(B(s), B(d), e => cb(e ? errno(e) : 0))),
  chmod: wrap('chmod', (p, mode, cb) => fs.chmod(B(p), mode, e => cb(e ? errno(e) : 0))),
  chown: wrap('chown', (p, u, g, cb) => fs.lchown(B(p), u, g, e => cb(e ? errno(e) : 0))),
  utimens: wrap('utimens', (p, at, mt, cb) => {
    // do not apply (values are suspect); just record
    cb(0)
  }),
  statfs: wrap('statfs', (p, cb) => fs.statfs(backing, (e, s) => {
    if (e) return cb(errno(e))
    const mode = process.env.STATFS_MODE || 'real'
    let out
    if (mode === 'real') out = { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 }
    else if (mode === 'huge') out = { bsize: 4096, frsize: 4096, blocks: 2 ** 33 + 1000, bfree: 2 ** 33, bavail: 2 ** 33, files: 2 ** 33, ffree: 2 ** 33, favail: 2 ** 33, fsid: 0, flag: 0, namemax: 255 }
    else if (mode === 'scaled') {
      // pretend a 64 TiB fs with 4096-byte blocks, scaled to frsize 1 MiB
      const bytes = 64 * 2 ** 40; const free = 32 * 2 ** 40
      const fr = 1 << 20
      out = { bsize: fr, frsize: fr, blocks: bytes / fr, bfree: free / fr, bavail: free / fr, files: 2 ** 32 - 1, ffree: 2 ** 32 - 2, favail: 2 ** 32 - 2, fsid: 0, flag: 0, namemax: 255 }
    }
    log({ ev: 'statfs-out', out })
    cb(0, out)
  }))
}

const opts = Object.assign({ timeout: false }, extra)
if (opts.timeout === 'default') delete opts.timeout // binding default (15 s)
const fuse = new Fuse(mnt, ops, opts)
log({ ev: 'options', str: fuse._fuseOptions() })
fuse.mount(err => {
  if (err) { log({ ev: 'mount-error', msg: err.message }); console.error('mount error', err); process.exit(1) }
  log({ ev: 'mounted' })
  console.log('MOUNTED')
})
function stop () {
  log({ ev: 'stopping', maxInflight })
  fuse.unmount(err => {
    log({ ev: 'unmounted', err: err && err.message })
    process.exit(0)
  })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('uncaughtException', e => { log({ ev: 'uncaught', msg: String(e && e.message), stack: String(e && e.stack).split('\n').slice(0, 4) }); console.error('UNCAUGHT', e && e.message) })
