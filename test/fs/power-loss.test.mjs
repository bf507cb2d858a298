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
import { readBackingPoint } from '../../dist/journal/backing-point.js'

// The power loss is played at the backing sync the copy was taken at: a
// background sync (here once a second, every 30 s by default) that ran
// again before the kill covered the changes, and there is nothing to redo.
// That try is played again.
async function playPowerLoss () {
  const base = tempDir('powerloss')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state'); const disk = join(base, 'disk')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  let d = await mount([src, mnt, '--state', state], { env: { REPLFS_BACKING_SYNC_MS: '1000' } })
  let synced
  try {
    sh(`mkdir ${mnt}/dir && head -c 300000 /dev/urandom > ${mnt}/dir/a && echo keep > ${mnt}/b && sync ${mnt}/dir/a`)
    // The background backing sync reaches the last sequence: what the disk holds now.
    synced = (await waitFor(async () => { const s = await status(state); return s.backingSyncedSeq === s.journal.nextSeq - 1 && s.backingSyncedSeq > 0 && s }, 10_000, 'a backing sync')).backingSyncedSeq
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
  if (readBackingPoint(state).seq !== synced) return false // a later backing sync: nothing lost to redo
  const expected = snapshot(src, { exact: true })
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
  return true
}

test('after a power loss, fsynced changes are redone from the journal', bounded(100_000, async () => {
  for (let attempt = 1; ; attempt++) {
    if (await playPowerLoss()) return
    console.log(`try ${attempt}: a backing sync ran before the kill; played again`)
    if (attempt === 5) throw new Error('a backing sync ran inside every try')
  }
}))

test.run()
