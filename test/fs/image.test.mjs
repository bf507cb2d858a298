// timeout: 240
// An image volume used as a block device: losetup on the image file inside
// the mount, mkfs.ext4, mount it, write files, unmount; e2fsck on the
// backing image is clean, and on an image rebuilt by replay too.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'

test('ext4 on a loop device over the image volume: fsck clean, replayed copy fsck clean and identical', bounded(200_000, async () => {
  const base = tempDir('image')
  const img = join(base, 'disk.img'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
  const ext = join(base, 'ext'); const copy = join(base, 'copy.img')
  fs.mkdirSync(mnt); fs.mkdirSync(ext)
  // The copy starts as the image starts: all zeros, 64 MiB.
  const d = await mount([mnt, '--group', 'blk', '--state', state, '--image', `disk=${img}:64M`])
  let loop = ''
  try {
    fs.writeFileSync(copy, '')
    fs.truncateSync(copy, 64 << 20)
    assert.equal(fs.statSync(join(mnt, 'disk')).size, 64 << 20)
    loop = sh(`losetup --find --show ${join(mnt, 'disk')}`).trim()
    // nodiscard: a discard would become fallocate(PUNCH_HOLE), which
    // libfuse 2 cannot pass (native-notes/pitfalls.md).
    sh(`mkfs.ext4 -q -F -E nodiscard ${loop}`)
    sh(`mount ${loop} ${ext}`)
    try {
      for (let i = 0; i < 50; i++) fs.writeFileSync(join(ext, `file${i}`), Buffer.alloc(10_000 + i * 997, i))
      fs.mkdirSync(join(ext, 'dir'))
      fs.writeFileSync(join(ext, 'dir/nested'), 'nested')
    } finally {
      sh(`umount ${ext}`)
    }
    sh(`losetup -d ${loop}`)
    loop = ''
    // Writing past the end of a block device's image fails, like a disk.
    const fd = fs.openSync(join(mnt, 'disk'), 'r+')
    assert.throws(() => fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 64 << 20), /ENOSPC/)
    fs.closeSync(fd)
    assert.throws(() => fs.unlinkSync(join(mnt, 'disk')), /EPERM/)
    assert.throws(() => fs.truncateSync(join(mnt, 'disk'), 4096), /EPERM/)
  } finally {
    if (loop) { try { sh(`umount ${ext}`) } catch {} try { sh(`losetup -d ${loop}`) } catch {} }
    await d.stop()
    unstick(mnt)
  }
  sh(`e2fsck -fn ${img}`)
  const rep = await cli(['journal', 'replay', state, '--image', `disk=${copy}`])
  assert.equal(rep.code, 0, rep.err)
  sh(`e2fsck -fn ${copy}`)
  assert.equal(sh(`cmp ${img} ${copy} && echo same`).trim(), 'same')
}))

test.run()
