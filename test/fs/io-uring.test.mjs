// timeout: 120
// `replfs mount --io-uring`: the same mount served over FUSE-over-io_uring
// (native-notes/io-uring.md). Writes, renames, unlink, xattrs and fsync go
// through the ring; the backing store holds them and the journal records
// them in order, as over /dev/fuse. Skipped only when the kernel has no
// FUSE over io_uring at all (no fuse.enable_uring parameter).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'

const PARAM = '/sys/module/fuse/parameters/enable_uring'

/** The names of the daemon's threads (the ring's are replfs-ring<cpu>). */
function threadNames (pid) {
  const dir = `/proc/${pid}/task`
  return fs.readdirSync(dir).map(t => { try { return fs.readFileSync(`${dir}/${t}/comm`, 'utf8').trim() } catch { return '' } })
}

if (!fs.existsSync(PARAM)) {
  console.log(`io-uring: skipped: this kernel has no FUSE over io_uring (${PARAM} is missing; Linux 6.14+)`)
} else {
  test('a mount served over io_uring: content, journal, unmount', bounded(90_000, async () => {
    const base = tempDir('uring')
    const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
    fs.mkdirSync(src); fs.mkdirSync(mnt)
    const d = await mount([src, mnt, '--state', state, '--io-uring'])
    let stopped = null
    const big = Buffer.alloc(1 << 20)
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff
    try {
      assert.equal(fs.readFileSync(PARAM, 'utf8').trim(), 'Y', 'the option turned fuse.enable_uring on')
      const rings = threadNames(d.proc.pid).filter(n => n.startsWith('replfs-ring'))
      assert.ok(rings.length >= 1, `ring threads: ${threadNames(d.proc.pid).join(' ')}`)

      fs.mkdirSync(join(mnt, 'dir'))
      fs.writeFileSync(join(mnt, 'dir/f'), 'abc')
      const fd = fs.openSync(join(mnt, 'big'), 'w+')
      fs.writeSync(fd, big, 0, big.length, 0)
      fs.writeSync(fd, Buffer.from('XYZ'), 0, 3, 4097)            // unaligned, inside a page
      fs.fsyncSync(fd)
      const back = Buffer.alloc(big.length)
      fs.readSync(fd, back, 0, back.length, 0)
      fs.closeSync(fd)
      big.write('XYZ', 4097)
      assert.ok(back.equals(big), 'read back through the ring')
      fs.renameSync(join(mnt, 'dir/f'), join(mnt, 'g'))
      execFileSync('setfattr', ['-n', 'user.k', '-v', 'v1', join(mnt, 'g')])
      assert.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.k', join(mnt, 'g')], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(), 'v1')
      execFileSync('setfattr', ['-x', 'user.k', join(mnt, 'g')])
      fs.symlinkSync('g', join(mnt, 's'))
      assert.equal(fs.readlinkSync(join(mnt, 's')), 'g')
      fs.unlinkSync(join(mnt, 's'))
      fs.rmdirSync(join(mnt, 'dir'))
      assert.equal(fs.readdirSync(mnt).sort(), ['big', 'g'])

      // the backing store holds it
      assert.equal(fs.readFileSync(join(src, 'g'), 'utf8'), 'abc')
      assert.ok(fs.readFileSync(join(src, 'big')).equals(big), 'backing big file')
      assert.equal(fs.readdirSync(src).sort(), ['big', 'g'])
    } finally {
      stopped = await d.stop('SIGTERM', 20_000)
      unstick(mnt)
    }
    assert.equal(stopped.code, 0, `mount exits 0 on SIGTERM: ${d.err}`)
    assert.not.ok(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `), 'unmounted')

    const j = await Journal.open(state, { group: 'src', readOnly: true })
    const recs = []
    for await (const { batch } of j.read(1)) batch.records.forEach((r, i) => recs.push([batch.seq + i, r]))
    const kinds = recs.map(([, r]) => `${r.kind}:${r.path}${r.to ? '>' + r.to : ''}`).filter(k => !k.startsWith('fsync:'))
    assert.equal(kinds.slice(0, 3), ['mkdir:dir', 'create:dir/f', 'write:dir/f'])
    assert.ok(kinds.includes('create:big'), kinds.join(' '))
    assert.equal(kinds.slice(kinds.indexOf('rename:dir/f>g')), ['rename:dir/f>g', 'setxattr:g', 'removexattr:g', 'symlink:s', 'unlink:s', 'rmdir:dir'])
    assert.equal(recs.map(([s]) => s), recs.map((_, i) => i + 1), 'sequences are 1..n without gaps')
    // the writes to big, replayed in order, give the file
    const img = Buffer.alloc(big.length)
    for (const [, r] of recs) if (r.kind === 'write' && r.path === 'big') Buffer.from(r.data).copy(img, r.off)
    assert.ok(img.equals(fs.readFileSync(join(src, 'big'))), 'journalled writes rebuild big')
  }))

  test.run()
}
