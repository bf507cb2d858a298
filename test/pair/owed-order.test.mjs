// timeout: 150
// A change whose journal append failed (the primary's state directory full)
// is in the backing store but not in the journal; it reaches the copy only
// when the parts it left hot are restated, once appends work again. A
// change journalled before that restate can build on it: here the create
// of a file was lost, and an open with O_TRUNC of that file, once there was
// room again, journalled a truncate of a file the secondary did not have.
// The secondary refused the batch halfway, called its copy inconsistent,
// and the pair resynced in full (the fault campaign met it: `truncate
// "tmp1" failed: ENOENT`). The core now refuses changes with the append's
// errno until the restate went through (capture.c owe_restate): the open,
// retried, lands after it, and nothing is resynced.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, waitSynced, stopAll, differences, smallStateFs, unmountState, sleep, resyncsIn } from '../helpers/pair.mjs'
import { fillFilesystem } from '../../scripts/faults/places.mjs'

const port = 17338

test('a change after a failed append waits for the restate: no batch refused, no resync', bounded(120_000, async () => {
  const L = layout('owed-order', { vols: ['one'] })
  const sfs = smallStateFs(L, 'p', 16)
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port))
    // fsynced: the journal then keeps zeros ahead of its end (the worst case for filling it).
    const before = fs.openSync(join(L.mnt, 'one', 'before'), 'w')
    try { fs.writeSync(before, 'journalled\n'); fs.fsyncSync(before) } finally { fs.closeSync(before) }
    await waitSynced(L)
    const resyncsBefore = resyncsIn(pri.err)
    fillFilesystem(sfs)
    // New files until one's create fails its journal append: the backing
    // store has it, the journal not. The journal keeps up to 256 KiB of
    // zeros ahead of its end (journal.c prealloc); the activity log, on the
    // same filesystem, has none and fills first: a create whose hot mark
    // found no room is refused before the backing store, and a page is
    // given back for the log to go on until the journal's zeros are used.
    const filler = join(sfs, 'filler')
    let lost = null
    for (let i = 0; i < 20_000 && !lost; i++) {
      const name = join(L.mnt, 'one', `new${i}-${'n'.repeat(200)}`)
      try { fs.closeSync(fs.openSync(name, 'w')) } catch (err) {
        assert.is(err.code, 'ENOSPC', err.message)
        if (fs.existsSync(join(L.p.one, name.split('/').pop()))) lost = name
        else fs.truncateSync(filler, Math.max(0, fs.statSync(filler).size - 4096))
      }
    }
    assert.ok(lost, 'no create failed its journal append on a full state directory')
    fs.rmSync(filler)
    // At once, before the restate (a second away): an open with O_TRUNC of
    // the file (a truncate record), refused until the restate went through.
    let refused = 0
    for (;;) {
      try { fs.writeFileSync(lost, 'written once there was room\n'); break } catch (err) {
        assert.is(err.code, 'ENOSPC', err.message)
        if (++refused > 300) throw new Error('the open was refused for 30 s')
        await sleep(100)
      }
    }
    console.log(`open refused ${refused} times before the restate went through`)
    await waitSynced(L, 60_000)
    assert.is(differences(L), null)
    assert.not.match(sec.err, /refused after part of it was applied|marked inconsistent/, sec.err.slice(-2000))
    assert.is(resyncsIn(pri.err), resyncsBefore, pri.err.slice(-2000))
    assert.match(pri.err, /re-journalled \(\d+ records\)/)
  } finally {
    await stopAll(L, pri, sec)
    unmountState(sfs)
  }
}))

test.run()
