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
import { layout, startPair, waitSynced, stopAll, differences, smallStateFs, unmountState, sleep } from '../helpers/pair.mjs'
import { fillFilesystem } from '../../scripts/faults/places.mjs'

const port = 17338

test('a change after a failed append waits for the restate: no batch refused, no resync', bounded(120_000, async () => {
  const L = layout('owed-order', { vols: ['one'] })
  const sfs = smallStateFs(L, 'p', 16)
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port))
    fs.writeFileSync(join(L.mnt, 'one', 'before'), 'journalled\n')
    await waitSynced(L)
    const resyncs = () => (pri.err.match(/resync of the secondary starts/g) ?? []).length
    const resyncsBefore = resyncs()
    fillFilesystem(sfs)
    // New files until one's create fails its append (the last page of the
    // segment may take a few): the backing store has it, the journal not.
    let lost = null
    for (let i = 0; i < 200 && !lost; i++) {
      const name = join(L.mnt, 'one', `new${i}`)
      try { fs.closeSync(fs.openSync(name, 'w')) } catch (err) { assert.is(err.code, 'ENOSPC', err.message); lost = name }
    }
    assert.ok(lost, 'no create failed on a full state directory')
    assert.ok(fs.existsSync(join(L.p.one, lost.split('/').pop())), 'the failed create is in the backing store')
    fs.rmSync(join(sfs, 'filler'))
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
    assert.is(resyncs(), resyncsBefore, pri.err.slice(-2000))
    assert.match(pri.err, /re-journalled \(\d+ records\)/)
  } finally {
    await stopAll(L, pri, sec)
    unmountState(sfs)
  }
}))

test.run()
