// timeout: 120
// A primary killed (kill -9) while its state directory is full, restarted
// on the still full directory: the restart must re-journal what was in
// flight, and cannot. The mount comes up anyway, `status` and the log say
// what was not re-journalled and why (the pair is not in sync meanwhile),
// writes get an errno, and once there is room the leftover parts are
// re-journalled: the journal replayed onto the initial copy gives the
// backing store (never silently divergent).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'
import { status, waitFor } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { fillFilesystem } from '../../scripts/faults/places.mjs'


test('kill -9 with a full state directory: the restart mounts, names what it owes, re-journals it once there is room', bounded(100_000, async () => {
  const base = tempDir('state-full-restart')
  const src = join(base, 'src'); const copy = join(base, 'copy'); const mnt = join(base, 'mnt')
  const sfs = join(base, 'statefs'); const state = join(sfs, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt); fs.mkdirSync(sfs); fs.mkdirSync(copy)
  sh(`mount -t tmpfs -o size=8m,mode=0700 replfs-test-state-full ${sfs}`)
  let d
  try {
    d = await mount([src, mnt, '--state', state])
    sh(`head -c 100000 /dev/urandom > ${mnt}/before`)
    fillFilesystem(sfs)
    // The backing store takes these, the journal cannot: the application gets an errno.
    let failed = 0
    for (let i = 0; i < 4; i++) {
      try { sh(`head -c 200000 /dev/urandom > ${mnt}/f${i}`) } catch { failed++ }
    }
    assert.ok(failed > 0, 'writes failed for want of journal space')
    assert.ok(fs.existsSync(join(src, 'f0')), 'the backing store has what the journal lacks')
    await d.kill9()
    unstick(mnt)
    d = null

    // Restart on the full directory: it must come up (it hung before, retrying the append).
    d = await mount([src, mnt, '--state', state], { timeoutMs: 20_000 })
    assert.match(d.err, /recovery: .*not re-journalled/, 'the log says what recovery could not re-journal')
    const st = await status(state)
    assert.ok(st.journalError, 'status names the journal error')
    assert.match(st.journalError.message, /JOURNAL_FULL|ENOSPC/, `the error is named: ${st.journalError.message}`)
    assert.ok(fs.statSync(mnt).isDirectory(), 'the mount serves')
    let refused = false
    try { sh(`head -c 200000 /dev/urandom > ${mnt}/during`) } catch { refused = true }
    assert.ok(refused, 'a write while full gets an errno')
    // Room again: the leftover parts are re-journalled, the error clears.
    fs.unlinkSync(join(sfs, 'filler'))
    await waitFor(async () => (await status(state)).journalError === null, 20_000, 'the journal error cleared')
    assert.match(d.err, /re-journalled/)
    if (process.env.TEST_DEBUG) console.log(d.err)
    sh(`echo after > ${mnt}/after`)
    const r = await d.stop()
    d = null
    assert.equal(r.code, 0, 'a clean stop')
    const rep = await cli(['journal', 'replay', state, '--volume', `src=${copy}`])
    assert.equal(rep.code, 0, rep.err)
    assert.equal(snapshot(copy), snapshot(src))
    assert.equal(fs.readdirSync(state).filter(n => n.startsWith('activity.owed-')), [], 'nothing owed is left')
  } finally {
    if (d) await d.stop()
    unstick(mnt)
    try { sh(`umount -l ${sfs}`) } catch {}
  }
}))

test.run()
