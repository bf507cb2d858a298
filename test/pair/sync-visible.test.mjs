// timeout: 120
// Sync mode: an operation that returned to the application is already on
// the secondary's disk (in its journal: DESIGN.md; the copy applies it a
// moment later). After each write (or rename, truncate, image write)
// returns in this process, the secondary's backing file is read directly
// and must hold it once the secondary has applied what it has. And it is
// durable there at that moment: at a few points, right after a write
// returns, the primary is stopped (SIGSTOP: it cannot send anything again),
// the secondary is killed (-9) and restarted, and its copy, rebuilt from its
// own journal alone, must hold the write.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../fs/workload.mjs'
import { layout, startPair, startSecondary, stopAll, differences, status, waitFor } from '../helpers/pair.mjs'

const port = 17120
const imageSize = 2 << 20

const readAt = (file, off, len) => {
  const fd = fs.openSync(file, 'r')
  try { const b = Buffer.alloc(len); const n = fs.readSync(fd, b, 0, len, off); return b.subarray(0, n) } finally { fs.closeSync(fd) }
}
const holds = (file, off, data) => { try { return readAt(file, off, data.length).equals(data) } catch { return false } }

test('sync mode: every returned write is on the secondary at that moment', bounded(100_000, async () => {
  const L = layout('pair-syncvis', { vols: ['one', 'two'], image: { name: 'disk', size: imageSize } })
  const r = rng(5)
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync' }))
    const files = ['one/f', 'two/g', 'one/sub/h']
    // On the copy once what the secondary stored is applied (a moment).
    const onCopy = (check, what) => waitFor(check, 5000, `${what} on the secondary`, 2)
    // The secondary rebuilt from its journal alone holds what returned.
    // Files open on the mount are closed first: starting a process (the new
    // secondary) closes its inherited close-on-exec descriptors at exec, and
    // that close of a FUSE file waits for the stopped primary.
    const crashSecondary = async (check, what) => {
      fds.forEach(fd => fs.closeSync(fd)); fs.closeSync(img)
      pri.proc.kill('SIGSTOP')
      try {
        await sec.kill9()
        sec = await startSecondary(L, port)
        await waitFor(check, 10_000, `${what} on the secondary restarted from its journal (primary stopped)`, 20)
      } finally { pri.proc.kill('SIGCONT') }
      files.forEach((f, j) => { fds[j] = fs.openSync(join(L.mnt, f), 'r+') })
      img = fs.openSync(join(L.mnt, 'disk'), 'r+')
    }
    fs.mkdirSync(join(L.mnt, 'one', 'sub'))
    await onCopy(() => fs.existsSync(join(L.s.one, 'sub')), 'mkdir')
    const fds = files.map(f => fs.openSync(join(L.mnt, f), 'w+'))
    let img = fs.openSync(join(L.mnt, 'disk'), 'r+')
    for (let i = 0; i < 300; i++) {
      const k = Math.floor(r() * files.length)
      const len = 1 + Math.floor(r() * 100_000)
      const off = Math.floor(r() * 400_000)
      const data = Buffer.alloc(len, i % 256)
      data.writeUInt32BE(i, 0)
      fs.writeSync(fds[k], data, 0, len, off)
      const [vol, ...rest] = files[k].split('/')
      const written = () => holds(join(L.s[vol], ...rest), off, data)
      if (i % 60 === 30) await crashSecondary(written, `write ${i} (${files[k]} @${off}+${len})`)
      else await onCopy(written, `write ${i} (${files[k]} @${off}+${len})`)
      if (i % 10 === 0) {
        const ioff = 4096 * Math.floor(r() * (imageSize / 4096 - 4))
        const blk = Buffer.alloc(16384, (i * 7) % 256)
        fs.writeSync(img, blk, 0, blk.length, ioff)
        const imaged = () => holds(L.s.disk, ioff, blk)
        if (i % 60 === 50) await crashSecondary(imaged, `image write ${i}`)
        else await onCopy(imaged, `image write ${i}`)
      }
      if (i % 25 === 0) {
        const size = Math.floor(r() * 300_000)
        fs.ftruncateSync(fds[k], size)
        await onCopy(() => fs.statSync(join(L.s[vol], ...rest)).size === size, `truncate ${i}`)
        fs.writeFileSync(join(L.mnt, 'two', `n${i}`), String(i))
        await onCopy(() => holds(join(L.s.two, `n${i}`), 0, Buffer.from(String(i))), `create+write ${i}`)
        fs.renameSync(join(L.mnt, 'two', `n${i}`), join(L.mnt, 'two', `m${i}`))
        const renamed = () => !fs.existsSync(join(L.s.two, `n${i}`)) && fs.existsSync(join(L.s.two, `m${i}`))
        if (i % 100 === 75) await crashSecondary(renamed, `rename ${i}`)
        else await onCopy(renamed, `rename ${i}`)
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
