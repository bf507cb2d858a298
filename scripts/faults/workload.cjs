// The campaign's application: run as its own process (never the one serving or
// proxying). Every iteration i:
//  1. dependent writes: one/ctr = i, then two/ctr = i (each only after the previous
//     returned; so any prefix of the history has two <= one <= two + 1);
//  2. an acknowledged write: record i at i*32 in the image and in one/acks, fsync both,
//     then i is appended to the ack log (outside the mount);
//  3. a seeded mixed operation: rename over, write through a handle after rename or
//     unlink, unlink, truncate, append, image blocks, mkdir/rmdir.
// Any error (the primary killed, its mount gone) closes everything and retries the
// step after a pause; only writes that returned are logged.
const fs = require('fs')
const { join } = require('path')
const [mnt, ackLog, stopFile, seedS, image, imageSizeS] = process.argv.slice(2)
const imageSize = Number(imageSizeS)
let s = Number(seedS) >>> 0
const r = () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
const sleep = ms => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const P = rel => join(mnt, rel)
const rec = i => Buffer.from(`ack ${String(i).padStart(27)}\n`) // 32 bytes
const ctr = n => Buffer.from(String(n).padStart(19) + '\n')

let fds = {}
const fd = (rel) => fds[rel] ?? (fds[rel] = fs.openSync(P(rel), 'r+'))
const closeAll = () => { for (const f of Object.values(fds)) { try { fs.closeSync(f) } catch {} } fds = {} }
let errors = 0
function retry (fn) {
  for (;;) {
    if (fs.existsSync(stopFile) && Date.now() > stopDeadline()) throw new Error('stopping')
    try { return fn() } catch (err) {
      if (errors++ < 3 || process.env.FAULT_DEBUG) process.stderr.write(`workload: ${err.message}\n`)
      closeAll(); sleep(100)
    }
  }
}
let stopAt = 0
const stopDeadline = () => stopAt || (stopAt = Date.now() + 60_000)

const counts = { iterations: 0, acked: 0, errors: 0, misc: {} }
function misc () {
  const k = Math.floor(r() * 6)
  const data = Buffer.alloc(1 + Math.floor(r() * 20000), Math.floor(r() * 256))
  const op = ['renameOver', 'renameOpen', 'unlinkOpen', 'unlink', 'truncate', 'append', 'image', 'image', 'dir'][Math.floor(r() * 9)]
  try {
    switch (op) {
      case 'renameOver': fs.writeFileSync(P(`two/tmp${k}`), data); fs.renameSync(P(`two/tmp${k}`), P(`two/f${k}`)); break
      case 'renameOpen': { // write through a handle after its file was renamed, and a new file at the old name
        const f = fs.openSync(P(`two/o${k}`), 'w')
        try {
          fs.writeSync(f, data); fs.renameSync(P(`two/o${k}`), P(`two/p${k}`))
          fs.writeFileSync(P(`two/o${k}`), 'new at the old name')
          fs.writeSync(f, data, 0, data.length, data.length)
        } finally { fs.closeSync(f) }
        break
      }
      case 'unlinkOpen': { // write through a handle after its file was unlinked
        const f = fs.openSync(P(`one/u${k}`), 'w')
        try { fs.writeSync(f, data); fs.unlinkSync(P(`one/u${k}`)); fs.writeSync(f, data) } finally { fs.closeSync(f) }
        break
      }
      case 'unlink': fs.unlinkSync(P(`two/f${k}`)); break
      case 'truncate': fs.truncateSync(P(`two/p${k}`), Math.floor(r() * 30000)); break
      case 'append': fs.appendFileSync(P(`one/log${k}`), data); break
      case 'image': { // blocks in the image's second half (the first holds the acks)
        const len = 4096 * (1 + Math.floor(r() * 8)); const half = imageSize / 2
        const off = half + 4096 * Math.floor(r() * ((half - len) / 4096))
        fs.writeSync(fd(image), Buffer.alloc(len, Math.floor(r() * 256)), 0, len, off)
        break
      }
      case 'dir': if (r() < 0.5) fs.mkdirSync(P(`one/d${k}`)); else fs.rmdirSync(P(`one/d${k}`)); break
    }
    counts.misc[op] = (counts.misc[op] ?? 0) + 1
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'EEXIST' && err.code !== 'ENOTEMPTY') { counts.errors++; closeAll(); sleep(50) }
  }
}

const maxId = Math.floor(imageSize / 2 / 32) - 1
const ackFd = fs.openSync(ackLog, 'a')
let i = 1
try {
  for (; i <= maxId && !fs.existsSync(stopFile); i++) {
    retry(() => fs.writeSync(fd('one/ctr'), ctr(i), 0, 20, 0))
    retry(() => fs.writeSync(fd('two/ctr'), ctr(i), 0, 20, 0))
    retry(() => {
      fs.writeSync(fd(image), rec(i), 0, 32, i * 32); fs.fsyncSync(fd(image))
      fs.writeSync(fd('one/acks'), rec(i), 0, 32, i * 32); fs.fsyncSync(fd('one/acks'))
    })
    fs.writeSync(ackFd, `${i}\n`)
    counts.acked++
    misc()
    counts.iterations++
  }
} catch (err) { if (err.message !== 'stopping') throw err }
closeAll()
counts.errors += errors
counts.last = i - 1
process.stdout.write(JSON.stringify(counts) + '\n')
