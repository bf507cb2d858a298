// timeout: 120
// A resync while the primary's state directory is full: the resync's
// records cannot be journalled (ENOSPC). The primary must keep serving,
// say why the resync stopped, and resync again once there is room. Found
// by the CI profile of the fault campaign (FAULT_SEED=1804821253, run 4: a
// full resync after journal damage, then the state directory full): the
// failed append was an unhandled rejection that killed the primary, and
// the pair never converged.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPrimary, startSecondary, waitSynced, waitFor, stopAll, differences, status, smallStateFs, unmountState } from '../helpers/pair.mjs'
import { fillFilesystem } from '../../scripts/faults/places.mjs'

const port = 17126

test('a resync with the primary\'s state directory full: the primary keeps serving and resyncs once there is room', bounded(100_000, async () => {
  const L = layout('pair-resync-full', { vols: ['one'] })
  const sfs = smallStateFs(L, 'p', 16)
  let pri, sec
  try {
    // Written alone: the secondary, new, gets a full resync of all of it.
    pri = await startPrimary(L, port)
    for (let i = 0; i < 8; i++) fs.writeFileSync(join(L.mnt, 'one', `f${i}`), Buffer.alloc(256 << 10, i + 1))
    fillFilesystem(sfs)
    sec = await startSecondary(L, port)
    await waitFor(() => pri.exited || /resync stopped/.test(pri.err), 30_000, 'the primary to say the resync stopped')
    assert.is(pri.exited, null, `the primary still runs:\n${pri.err}`)
    assert.match(pri.err, /resync stopped: .*No space left on device.*; the next connection resyncs in full/)
    const st = await status(L.pstate)
    assert.ok(st.peerState !== 'streaming' || st.resync, 'not in sync while the resync cannot go on')
    fs.rmSync(join(sfs, 'filler'))
    await waitSynced(L, 60_000)
    assert.is(pri.exited, null, 'the primary still runs')
  } finally {
    if (process.env.TEST_DEBUG) console.log(`--- primary log\n${pri?.err}`)
    await stopAll(L, pri, sec)
    unmountState(sfs)
  }
  assert.equal(differences(L), null)
}))

test.run()
