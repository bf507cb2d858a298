// timeout: 120
// A secondary does not flush its copy once per fsync the application made:
// the barriers that come within receiver.ts's barrierMergeMs share a flush,
// or catching up a backlog would be no faster than the application was, and
// in step every fsync on the primary would pay a flush of the copy too
// (on one disk). An async pair, the secondary stopped while 400 writes each
// followed by an fsync go through the primary; once it is back and the
// pair is in sync, the copy is identical and took far fewer flushes than
// fsyncs. (Before the change each fsync record cost a flush: 400 or more.)
// Then the same in step, and a last lone fsync is still flushed once
// nothing more comes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

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
    // The last barriers' flush comes at most barrierMergeMs after they applied.
    const s = await waitFor(async () => { const x = await status(L.sstate); return x.copyFlushes >= 1 && x }, 10_000, 'a flush of the copy')
    console.log(`secondary: ${s.batchesApplied} batches applied after the restart, ${s.copyFlushes} flushes of the copy for ${fsyncs} fsyncs`)
    assert.type(s.copyFlushes, 'number')
    assert.ok(s.copyFlushes >= 1, 'the copy was never flushed')
    assert.ok(s.copyFlushes <= fsyncs / 4, `${s.copyFlushes} flushes for ${fsyncs} fsyncs caught up`)
    assert.is(differences(L), null)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

function writeAndFsync (path, n, from = 0) {
  const fd = fs.openSync(path, fs.existsSync(path) ? 'r+' : 'w')
  try {
    for (let i = from; i < from + n; i++) {
      fs.writeSync(fd, Buffer.from(`record ${String(i).padStart(8)}\n`), 0, 16, i * 16)
      fs.fsyncSync(fd)
    }
  } finally { fs.closeSync(fd) }
}

test('in step, fsyncs share flushes of the copy; a lone one is flushed without more to come', bounded(100_000, async () => {
  const L = layout('in-step-flush', { vols: ['one'] })
  const port = 17339
  let sec, pri
  try {
    ({ sec, pri } = await startPair(L, port))
    const path = join(L.mnt, 'one', 'log')
    writeAndFsync(path, fsyncs)
    await waitSynced(L)
    const s = await status(L.sstate)
    console.log(`secondary in step: ${s.copyFlushes} flushes of the copy for ${fsyncs} fsyncs`)
    // In step before the change: about 100 here (400 fsyncs in about 1 s, most flushed alone).
    assert.ok(s.copyFlushes <= fsyncs / 10, `${s.copyFlushes} flushes for ${fsyncs} fsyncs in step`)
    const before = (await waitFor(async () => {
      const a = (await status(L.sstate)).copyFlushes
      await new Promise(resolve => setTimeout(resolve, 300))
      return a === (await status(L.sstate)).copyFlushes && { a }
    }, 10_000, 'the flushes to settle')).a
    writeAndFsync(path, 1, fsyncs)
    await waitFor(async () => (await status(L.sstate)).copyFlushes > before, 10_000, 'a flush of the lone fsync')
    await waitSynced(L)
    assert.is(differences(L), null)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
