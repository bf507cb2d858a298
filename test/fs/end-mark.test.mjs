// timeout: 240
// The native core's end mark (src/native/end_mark.h): after a kill -9, a
// newest segment cut short of what the core appended on this boot is
// damage, named, even past the checkpoint and the last backing sync; a
// torn frame at the very end is still a torn tail; after another boot (the
// mark unsynced, so it says nothing) the older rules hold.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded } from '../helpers/mount.mjs'
import { listSegments, scanSegment } from '../../dist/journal/segments.js'

/** A mount, some writes through it, then kill -9: the state dir and the newest segment's frames. */
async function killedMidRun (name) {
  const base = tempDir(name)
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  const d = await mount([src, mnt, '--state', state])
  try {
    for (let i = 0; i < 40; i++) fs.writeFileSync(join(mnt, `f${i % 5}`), Buffer.alloc(8192, i))
    await d.kill9()
  } finally {
    unstick(mnt)
  }
  const segs = await listSegments(state)
  const newest = segs[segs.length - 1]
  const scan = await scanSegment(newest.path)
  return { src, mnt, state, newest, batches: scan.batches }
}

async function restart (t, env) {
  const d = await mount([t.src, t.mnt, '--state', t.state], env ? { env } : undefined)
  try {
    fs.writeFileSync(join(t.mnt, 'after'), 'on')
    return d.err
  } finally {
    await d.stop()
    unstick(t.mnt)
  }
}

test('whole frames cut from the newest segment on this boot: damage, with the sequences', bounded(60_000, async () => {
  const t = await killedMidRun('end-mark-cut')
  const keep = t.batches[t.batches.length - 6]
  const lastSeq = t.batches[t.batches.length - 1].batch
  fs.truncateSync(t.newest.path, keep.offset + 3) // 5 whole frames and a bit of one more go
  const err = await restart(t)
  const from = keep.batch.seq
  const to = lastSeq.seq + lastSeq.records.length - 1
  assert.match(err, new RegExp(`journal damaged: .*sequences ${from}\\.\\.${to} lost`), err)
  assert.match(err, /journal\.end/)
}))

test('a torn frame at the end after kill -9: a torn tail, no damage', bounded(60_000, async () => {
  const t = await killedMidRun('end-mark-torn')
  fs.appendFileSync(t.newest.path, Buffer.from([0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]))
  const err = await restart(t)
  assert.match(err, /torn tail cut/)
  assert.not.match(err, /journal damaged/, err)
}))

test('the newest segment deleted on this boot: damage', bounded(60_000, async () => {
  const t = await killedMidRun('end-mark-deleted')
  fs.rmSync(t.newest.path)
  const err = await restart(t)
  assert.match(err, /journal damaged: .*sequences \d+\.\.\d+ lost/, err)
}))

test('after another boot the mark says nothing: the cut is a torn tail, as before', bounded(60_000, async () => {
  const t = await killedMidRun('end-mark-reboot')
  const keep = t.batches[t.batches.length - 6]
  fs.truncateSync(t.newest.path, keep.offset + 3)
  const err = await restart(t, { REPLFS_BOOT_ID: 'another-boot-of-this-machine' })
  assert.match(err, /torn tail cut/)
  assert.not.match(err, /journal\.end/, err)
}))

test.run()
