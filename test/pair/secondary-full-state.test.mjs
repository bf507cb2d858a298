// timeout: 150
// The secondary's state directory full of its own journal: its batches are
// applied, but trimming them waits on a checkpoint, a new file, which a
// directory without a free page cannot take; nothing was trimmed, every
// store failed, and replication stopped for good. The secondary keeps the
// same reserve of free space the primary does (journal/reserve.ts): the
// checkpoint is written from it, the applied segments go, and the pair
// goes on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, waitSynced, stopAll, differences, status, smallStateFs, unmountState } from '../helpers/pair.mjs'
import { fillFilesystem } from '../../scripts/faults/places.mjs'

const port = 17323

test('a secondary whose state directory its journal filled trims from its reserve and goes on', bounded(140_000, async () => {
  const L = layout('sec-full-state', { vols: ['one'] })
  const sfs = smallStateFs(L, 's', 8)
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port))
    // Leave the journal about 3 MiB, then write 4 times that through the mount.
    fillFilesystem(sfs)
    fs.truncateSync(join(sfs, 'filler'), fs.statSync(join(sfs, 'filler')).size - (3 << 20))
    const block = Buffer.alloc(256 << 10)
    for (let i = 0; i < 48; i++) {
      block.fill(i + 1)
      fs.writeFileSync(join(L.mnt, 'one', `f${i % 6}`), block)
    }
    await waitSynced(L, 90_000)
    assert.is(differences(L), null)
    const s = await status(L.sstate)
    assert.ok(s.consistent, JSON.stringify(s))
  } finally {
    await stopAll(L, pri, sec)
    unmountState(sfs)
  }
}))

test.run()
