// timeout: 120
// Sync mode: an operation that returned to the application is already on
// the secondary's disk. After each write (or rename, truncate, image
// write) returns in this process, the secondary's backing file is read
// directly and must hold it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../fs/workload.mjs'
import { layout, startPair, stopAll, differences, status } from '../helpers/pair.mjs'

const port = 17120
const imageSize = 2 << 20

const readAt = (file, off, len) => {
  const fd = fs.openSync(file, 'r')
  try { const b = Buffer.alloc(len); const n = fs.readSync(fd, b, 0, len, off); return b.subarray(0, n) } finally { fs.closeSync(fd) }
}

test('sync mode: every returned write is on the secondary at that moment', bounded(100_000, async () => {
  const L = layout('pair-syncvis', { vols: ['one', 'two'], image: { name: 'disk', size: imageSize } })
  const r = rng(5)
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync' }))
    const files = ['one/f', 'two/g', 'one/sub/h']
    fs.mkdirSync(join(L.mnt, 'one', 'sub'))
    assert.ok(fs.statSync(join(L.s.one, 'sub')).isDirectory(), 'mkdir on the secondary')
    const fds = files.map(f => fs.openSync(join(L.mnt, f), 'w+'))
    const img = fs.openSync(join(L.mnt, 'disk'), 'r+')
    for (let i = 0; i < 300; i++) {
      const k = Math.floor(r() * files.length)
      const len = 1 + Math.floor(r() * 100_000)
      const off = Math.floor(r() * 400_000)
      const data = Buffer.alloc(len, i % 256)
      data.writeUInt32BE(i, 0)
      fs.writeSync(fds[k], data, 0, len, off)
      const [vol, ...rest] = files[k].split('/')
      const got = readAt(join(L.s[vol], ...rest), off, len)
      assert.ok(got.equals(data), `write ${i} (${files[k]} @${off}+${len}) not on the secondary when it returned`)
      if (i % 10 === 0) {
        const ioff = 4096 * Math.floor(r() * (imageSize / 4096 - 4))
        const blk = Buffer.alloc(16384, (i * 7) % 256)
        fs.writeSync(img, blk, 0, blk.length, ioff)
        assert.ok(readAt(L.s.disk, ioff, blk.length).equals(blk), `image write ${i} not on the secondary`)
      }
      if (i % 25 === 0) {
        const size = Math.floor(r() * 300_000)
        fs.ftruncateSync(fds[k], size)
        assert.equal(fs.statSync(join(L.s[vol], ...rest)).size, size, `truncate ${i}`)
        fs.writeFileSync(join(L.mnt, 'two', `n${i}`), String(i))
        assert.equal(fs.readFileSync(join(L.s.two, `n${i}`), 'utf8'), String(i), `create+write ${i}`)
        fs.renameSync(join(L.mnt, 'two', `n${i}`), join(L.mnt, 'two', `m${i}`))
        assert.ok(!fs.existsSync(join(L.s.two, `n${i}`)) && fs.existsSync(join(L.s.two, `m${i}`)), `rename ${i}`)
      }
    }
    fds.forEach(fd => fs.closeSync(fd)); fs.closeSync(img)
    const p = await status(L.pstate)
    assert.equal(p.syncFallback, false, 'sync mode held throughout')
  } finally {
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
