// timeout: 240
// A full secondary volume (a small loop-mounted ext4 as the copy): the
// apply that meets ENOSPC is never skipped. The secondary stops applying,
// keeps the batch, says what and where (status `applyError` with the path,
// the log), is not called consistent, and retries with backoff; the
// primary's acks stop at what was applied and a sync-mode write is not
// acknowledged by it. Once space is freed the pair converges to identical,
// also across a restart of the secondary while it was stuck. Same during an
// initial sync (the resync path used to skip the error and then declare the
// copy consistent).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { bounded, unstick } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, startPrimary, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

/** An ext4 of `mib` MiB loop-mounted at base/small; the secondary's volume
 *  is small/vol, a filler file beside it leaves about `freeMib` free. */
function smallDisk (L, mib, freeMib) {
  const img = join(L.base, 'small.img')
  const mnt = join(L.base, 'small')
  fs.mkdirSync(mnt)
  execFileSync('dd', ['if=/dev/zero', `of=${img}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' })
  execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', img], { stdio: 'ignore' })
  execFileSync('mount', ['-o', 'loop', img, mnt])
  const vol = join(mnt, 'vol')
  fs.mkdirSync(vol)
  const filler = join(mnt, 'filler')
  const free = () => { const s = fs.statfsSync(mnt); return s.bavail * s.bsize }
  const fill = Math.max(0, free() - freeMib * (1 << 20))
  const fd = fs.openSync(filler, 'w')
  const chunk = Buffer.alloc(1 << 20, 1)
  for (let left = fill; left > 0; left -= chunk.length) fs.writeSync(fd, chunk, 0, Math.min(left, chunk.length))
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  return {
    vol,
    free,
    release: () => { fs.rmSync(filler, { force: true }); execFileSync('sync') },
    unmount: () => { try { execFileSync('umount', [mnt], { stdio: 'ignore' }) } catch { try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }) } catch {} } }
  }
}

function setUp (name) {
  const L = layout(name, { vols: ['one'] })
  const disk = smallDisk(L, 16, 1)
  fs.rmdirSync(L.s.one)
  L.s.one = disk.vol
  return { L, disk }
}

const stuckOn = (s, path) => s.applyError && s.applyError.path === path && /ENOSPC/.test(s.applyError.message) && s

test('ENOSPC while streaming (sync mode): applying stops and retries, nothing acked past it, converges once space is freed, across a restart', bounded(200_000, async () => {
  const { L, disk } = setUp('enospc-stream')
  const port = 17300
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '2'] }))
    fs.writeFileSync(join(L.mnt, 'one', 'small'), 'fits')
    await waitSynced(L)
    const big = Buffer.alloc(3 << 20, 7)
    fs.writeFileSync(join(L.mnt, 'one', 'big'), big) // returns after the sync timeout: the secondary cannot take it
    const s = await waitFor(async () => stuckOn(await status(L.sstate), 'big'), 30_000, 'applyError naming big and ENOSPC')
    assert.is(s.consistent, false, 'a copy stuck inside a batch is not consistent')
    assert.match(s.lastError, /ENOSPC/)
    assert.match(sec.err, /ENOSPC/)
    assert.match(sec.err, /big/)
    const p = await waitFor(async () => { const p = await status(L.pstate); return /APPLY_BLOCKED/.test(p.lastError ?? '') && p }, 20_000, 'the primary to show why')
    assert.ok(p.ackedSeq <= s.appliedSeq, `acked ${p.ackedSeq} past applied ${s.appliedSeq}`)
    assert.ok(p.ackedSeq < p.lastSeq, 'nothing acked past the stuck batch')
    assert.ok(p.syncFallback, 'sync mode says it fell back')
    // Still stuck a few retries later, and across a restart of the secondary.
    await sec.stop()
    sec = await startSecondary(L, port)
    await waitFor(async () => stuckOn(await status(L.sstate), 'big'), 30_000, 'still stuck after the restart')
    // Free the space: it resumes by itself and the pair converges.
    disk.release()
    await waitSynced(L, 90_000)
    assert.is(differences(L), null)
    const after = await status(L.sstate)
    assert.is(after.applyError, null)
    assert.is(after.consistent, true)
  } finally {
    await stopAll(L, pri, sec)
    unstick(L.mnt)
    disk.unmount()
  }
}))

test('ENOSPC during the initial sync: not skipped, not declared consistent until applied', bounded(200_000, async () => {
  const { L, disk } = setUp('enospc-resync')
  const port = 17301
  fs.writeFileSync(join(L.p.one, 'big'), Buffer.alloc(3 << 20, 9))
  fs.writeFileSync(join(L.p.one, 'a'), 'a')
  let sec, pri
  try {
    sec = await startSecondary(L, port)
    pri = await startPrimary(L, port)
    const s = await waitFor(async () => stuckOn(await status(L.sstate), 'big'), 30_000, 'applyError naming big during the resync')
    assert.is(s.consistent, false)
    // Stuck stays stuck: never consistent while the file is missing.
    await new Promise(resolve => setTimeout(resolve, 3000))
    const s2 = await status(L.sstate)
    assert.is(s2.consistent, false, JSON.stringify(s2))
    disk.release()
    await waitSynced(L, 90_000)
    assert.is(differences(L), null)
  } finally {
    await stopAll(L, pri, sec)
    unstick(L.mnt)
    disk.unmount()
  }
}))

test.run()
