// timeout: 120
// A primary whose state directory fills up: operations get an errno, the
// mount stays alive, status says what is wrong, and once there is room the
// parts a failed append left hot are re-journalled: the journal replayed
// onto the initial copy still gives the backing store (never silently
// divergent).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'
import { status, waitFor } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'

test('a full state directory: errnos, a live mount, then the journal catches up', bounded(100_000, async () => {
  const base = tempDir('state-full')
  const src = join(base, 'src'); const copy = join(base, 'copy'); const mnt = join(base, 'mnt')
  const img = join(base, 'state.img'); const sfs = join(base, 'statefs'); const state = join(sfs, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt); fs.mkdirSync(sfs); fs.mkdirSync(copy)
  sh(`truncate -s 24M ${img} && mkfs.ext4 -q ${img} && mount -o loop ${img} ${sfs}`)
  let d
  try {
    d = await mount([src, mnt, '--state', state])
    // Leave about 1 MiB free in the state filesystem.
    const free = Number(sh(`df -B1 --output=avail ${sfs} | tail -1`).trim())
    sh(`fallocate -l ${free - (1 << 20)} ${sfs}/filler`)
    let failed = 0
    for (let i = 0; i < 16; i++) {
      try { sh(`head -c 262144 /dev/urandom > ${mnt}/f${i}`) } catch { failed++ }
    }
    assert.ok(failed > 0, 'some writes failed for want of journal space')
    assert.ok(fs.statSync(mnt).isDirectory(), 'the mount is alive')
    const st = await status(state)
    assert.ok(st.journalError, `status names the journal error: ${JSON.stringify(st.journalError)}`)
    // Room again: what was left hot is re-journalled; new writes work.
    fs.unlinkSync(join(sfs, 'filler'))
    await waitFor(() => /re-journalled/.test(d.err), 20_000, 'the hot parts re-journalled')
    sh(`echo after > ${mnt}/after`)
  } finally {
    if (d) { const r = await d.stop(); assert.equal(r.code, 0, d.err) }
    unstick(mnt)
  }
  try {
    const rep = await cli(['journal', 'replay', state, '--volume', `src=${copy}`])
    assert.equal(rep.code, 0, rep.err)
    assert.equal(snapshot(copy), snapshot(src))
  } finally {
    sh(`umount -l ${sfs}`)
  }
}))

test.run()
