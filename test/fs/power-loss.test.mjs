// timeout: 120
// The journal is the redo log: an fsync returns once the journal is on
// disk, and the backing store is synced in the background. A power loss is
// played by putting back a copy of the backing store taken at the last
// backing sync (what the disk held) and restarting with another boot id:
// the records since are redone from the journal before the mount opens,
// and every fsynced change is there.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, sh } from '../helpers/mount.mjs'
import { status, waitFor } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'

test('after a power loss, fsynced changes are redone from the journal', bounded(100_000, async () => {
  const base = tempDir('powerloss')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state'); const disk = join(base, 'disk')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  let d = await mount([src, mnt, '--state', state])
  let expected
  try {
    sh(`mkdir ${mnt}/dir && head -c 300000 /dev/urandom > ${mnt}/dir/a && echo keep > ${mnt}/b && sync ${mnt}/dir/a`)
    // The background backing sync reaches the last sequence: what the disk holds now.
    await waitFor(async () => { const s = await status(state); return s.backingSyncedSeq === s.journal.nextSeq - 1 && s.backingSyncedSeq > 0 }, 10_000, 'a backing sync')
    sh(`cp -a ${src} ${disk}`)
    // Changes after it, each fsynced by the application.
    sh(`python3 - <<'PY'
import os
def fsynced(path, data, off=0, flags=os.O_WRONLY | os.O_CREAT):
    fd = os.open(path, flags, 0o640); os.pwrite(fd, data, off); os.fsync(fd); os.close(fd)
fsynced('${mnt}/dir/a', b'X' * 5000, 100000)
fsynced('${mnt}/c', b'new file')
os.rename('${mnt}/b', '${mnt}/dir/b2')
os.mkdir('${mnt}/d2'); os.chmod('${mnt}/d2', 0o700)
os.truncate('${mnt}/dir/a', 200000)
fd = os.open('${mnt}/dir', os.O_RDONLY); os.fsync(fd); os.close(fd)
PY`)
  } finally {
    await d.kill9()
    unstick(mnt)
  }
  expected = snapshot(src, { exact: true })
  // The power loss: the backing store as the disk had it at the last sync.
  sh(`rm -rf ${src} && mv ${disk} ${src}`)
  assert.not.equal(snapshot(src, { exact: true }), expected)
  d = await mount([src, mnt, '--state', state], { env: { REPLFS_BOOT_ID: 'another-boot' } })
  try {
    assert.match(d.err, /power loss recovery: redid \d+ records/)
    assert.equal(snapshot(src, { exact: true }), expected)
    assert.equal(sh(`cat ${mnt}/c`), 'new file')
  } finally {
    const r = await d.stop()
    unstick(mnt)
    assert.equal(r.code, 0, d.err)
  }
}))

test.run()
