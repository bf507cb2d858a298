// timeout: 180
// Both modes over loopback: a seeded mixed workload across two directory
// volumes and an image volume (writes, truncates, renames, unlinks, hard
// links, symlinks, xattrs, chmod, trees, image blocks); once the primary has
// nothing unacknowledged, the secondary's copies equal the primary's
// backing store, trees and image bytes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { runWorkload } from '../fs/workload.mjs'
import { layout, startPair, waitSynced, stopAll, differences, status } from '../helpers/pair.mjs'

const imageSize = 4 << 20

for (const [mode, port, seed] of [['async', 17100, 7], ['sync', 17101, 8]]) {
  test(`${mode} mode: the replica equals the primary after a mixed workload`, bounded(80_000, async () => {
    const L = layout(`pair-${mode}`, { vols: ['one', 'two'], image: { name: 'disk', size: imageSize } })
    // Some content before the pair starts: the initial sync carries it.
    fs.writeFileSync(join(L.p.one, 'a'), 'before the pair')
    let pri, sec
    try {
      ({ pri, sec } = await startPair(L, port, { mode }))
      const counts = runWorkload(L.mnt, ['one', 'two'], { steps: 400, seed, image: 'disk', imageSize })
      assert.ok(counts.write > 50 && counts.rename > 5 && counts.image > 20 && counts.xattr > 5, JSON.stringify(counts))
      const { p } = await waitSynced(L, 30_000)
      assert.equal(p.mode, mode)
      assert.equal(p.syncFallback, false, 'sync never fell back')
      assert.ok(p.lastSeq > 400, `records journalled: ${p.lastSeq}`)
      const s = await status(L.sstate)
      assert.equal(s.role, 'secondary')
      assert.ok(s.batchesApplied > 0)
    } finally {
      await stopAll(L, pri, sec)
    }
    assert.equal(differences(L), null)
    assert.ok(!pri.err.includes('falling back'), pri.err)
  }))
}

test.run()
