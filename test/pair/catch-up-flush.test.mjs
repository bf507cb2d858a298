// timeout: 120
// A secondary catching up a backlog does not flush its copy once per fsync
// the application made: the barriers of batches stored behind one another
// share a flush (receiver.ts barrierMergeMs), or catching up would be no
// faster than the application was. An async pair, the secondary stopped
// while 400 writes each followed by an fsync go through the primary; once
// it is back and the pair is in sync, the copy is identical and took far
// fewer flushes than fsyncs. (Before the change each fsync record cost a
// flush: 400 or more.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, stopAll, differences, status } from '../helpers/pair.mjs'

const fsyncs = 400

test('a backlog of fsyncs is caught up with merged flushes; the copy ends identical', bounded(100_000, async () => {
  const L = layout('catch-up-flush', { vols: ['one'] })
  const port = 17335
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    await sec.stop()
    const fd = fs.openSync(join(L.mnt, 'one', 'log'), 'w')
    const other = fs.openSync(join(L.mnt, 'one', 'other'), 'w')
    try {
      for (let i = 0; i < fsyncs; i++) {
        fs.writeSync(fd, Buffer.from(`record ${String(i).padStart(8)}\n`), 0, 16, i * 16)
        fs.writeSync(other, Buffer.alloc(512, i % 251), 0, 512, (i % 64) * 512)
        fs.fsyncSync(fd)
      }
    } finally { fs.closeSync(fd); fs.closeSync(other) }
    sec = await startSecondary(L, port)
    await waitSynced(L)
    const s = await status(L.sstate)
    console.log(`secondary: ${s.batchesApplied} batches applied after the restart, ${s.copyFlushes} flushes of the copy for ${fsyncs} fsyncs`)
    assert.type(s.copyFlushes, 'number')
    assert.ok(s.copyFlushes >= 1, 'the copy was never flushed')
    assert.ok(s.copyFlushes <= fsyncs / 4, `${s.copyFlushes} flushes for ${fsyncs} fsyncs caught up`)
    assert.is(differences(L), null)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
