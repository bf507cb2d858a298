// timeout: 150
// A power loss of the secondary's machine: the copy's files and its applied
// cursor live in the page cache between flushes and reach the disk in no
// order, so the cursor may count as applied what the copy lost. Played by
// a kill -9 of the secondary, the removal from its copy of a file written
// since its last flush (the page cache lost), and a start with another
// boot id (REPLFS_BOOT_ID). The secondary says what happened, counts its
// copy inconsistent, and the primary's compare of every block brings it
// back identical (before, it resumed from its cursor: the file stayed
// missing while both sides called the pair in sync). A clean stop syncs
// the copy, and a start on another boot after one trusts the cursor.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, stopAll, differences, status, resyncsIn } from '../helpers/pair.mjs'

const wentDown = /went down under it/

async function startOnAnotherBoot (L, port, boot) {
  process.env.REPLFS_BOOT_ID = boot
  try { return await startSecondary(L, port) } finally { delete process.env.REPLFS_BOOT_ID }
}

test('a secondary restarted on another boot after a kill is compared in full and ends identical', bounded(120_000, async () => {
  const L = layout('sec-power-loss', { vols: ['one'] })
  const port = 17336
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    fs.writeFileSync(join(L.mnt, 'one', 'kept'), randomBytes(70_000))
    fs.mkdirSync(join(L.mnt, 'one', 'dir'))
    fs.writeFileSync(join(L.mnt, 'one', 'dir', 'lost'), randomBytes(200_000))
    await waitSynced(L)
    await sec.kill9()
    const resyncsBefore = resyncsIn(pri.err)
    // No fsync reached the copy since these writes: a power loss may take any of them.
    fs.rmSync(join(L.s.one, 'dir', 'lost'))
    sec = await startOnAnotherBoot(L, port, 'another-boot-after-a-power-loss')
    await waitSynced(L)
    assert.is(differences(L), null)
    assert.is((await status(L.sstate)).consistent, true)
    assert.match(sec.err, wentDown, sec.err)
    assert.ok(/resync, full: the copy is marked inconsistent/.test(pri.err), 'the primary compared every block')
    assert.is(resyncsIn(pri.err), resyncsBefore + 1, 'one resync after the restart')
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('after a clean stop, a start on another boot trusts the cursor', bounded(120_000, async () => {
  const L = layout('sec-clean-reboot', { vols: ['one'] })
  const port = 17337
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    fs.writeFileSync(join(L.mnt, 'one', 'f'), randomBytes(50_000))
    await waitSynced(L)
    await sec.stop()
    const resyncsBefore = resyncsIn(pri.err)
    sec = await startOnAnotherBoot(L, port, 'another-boot-after-a-clean-stop')
    fs.writeFileSync(join(L.mnt, 'one', 'g'), 'after the reboot')
    await waitSynced(L)
    assert.not.match(sec.err, wentDown)
    assert.is(resyncsIn(pri.err), resyncsBefore, pri.err.slice(-1500))
    assert.is(differences(L), null)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
