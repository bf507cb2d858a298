// timeout: 180
// The zeros the native core writes ahead of its journal's end once an
// application fsyncs (src/native/journal.c, prealloc: its fdatasyncs then
// overwrite written blocks instead of committing a new size each time).
// They are the end of the frames for every reader: a restart after kill -9
// cuts them without a word; bytes in them that are not zeros are damage,
// named; a clean stop leaves none; a reader of the live journal stops there.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, cli } from '../helpers/mount.mjs'
import { status } from '../helpers/pair.mjs'
import { listSegments, scanSegment } from '../../dist/journal/segments.js'

function fsyncedWrites (mnt, n) {
  const fd = fs.openSync(join(mnt, 'db'), 'w')
  try {
    for (let i = 0; i < n; i++) { fs.writeSync(fd, Buffer.alloc(4096, i), 0, 4096, i * 4096); fs.fsyncSync(fd) }
  } finally { fs.closeSync(fd) }
}

async function newest (state) {
  const segs = await listSegments(state)
  const seg = segs[segs.length - 1]
  return { ...seg, scan: await scanSegment(seg.path) }
}

test('kill -9 after fsyncs: the zeros are cut silently, the data is there; bytes in them are damage; a clean stop leaves none', bounded(150_000, async () => {
  const base = tempDir('zero-tail')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  let d = await mount([src, mnt, '--state', state])
  try {
    fsyncedWrites(mnt, 20)
    const live = await newest(state)
    assert.ok(live.scan.zerosAt !== null && live.bytes > live.scan.zerosAt, `zeros ahead of the end (${live.bytes} bytes, frames end at ${live.scan.zerosAt})`)
    assert.is(live.scan.holes.length, 0)
    // A reader of the live journal stops at them (no damage, every record).
    const r = await cli(['journal', 'inspect', state, '--json'])
    assert.is(r.code, 0, r.err)
    assert.ok(JSON.parse(r.out).segments.every(s => s.damage === null), r.out)
    await d.kill9()
  } finally { unstick(mnt) }

  d = await mount([src, mnt, '--state', state])
  try {
    assert.not.match(d.err, /torn tail|damaged/, d.err)
    const b = fs.readFileSync(join(mnt, 'db'))
    for (let i = 0; i < 20; i++) assert.ok(b.subarray(i * 4096, (i + 1) * 4096).every(x => x === (i & 255)), `block ${i}`)
    fsyncedWrites(mnt, 5)
    await d.kill9()
  } finally { unstick(mnt) }

  const seg = await newest(state)
  assert.ok(seg.scan.zerosAt !== null && seg.bytes - seg.scan.zerosAt > 100, 'zeros again')
  const at = seg.scan.zerosAt + 100
  const fd = fs.openSync(seg.path, 'r+')
  fs.writeSync(fd, Buffer.from([0x40]), 0, 1, at)
  fs.closeSync(fd)
  d = await mount([src, mnt, '--state', state])
  try {
    assert.match(d.err, new RegExp(`journal segment .* damaged: bytes that are not zeros at byte ${at}.*no record lost`), d.err)
    const st = await status(state)
    assert.ok((st.damage ?? []).some(x => /not zeros/.test(x)), JSON.stringify(st.damage))
    fsyncedWrites(mnt, 5)
  } finally {
    await d.stop()
    unstick(mnt)
  }
  const after = await newest(state)
  assert.is(after.scan.zerosAt, null, 'a clean stop cuts the zeros')
  assert.is(after.scan.holes.length, 0)
}))

test.run()
