// Damage is named and bounded, never cut as a torn tail: a flipped byte in
// a frame that is not the newest segment's last, a deleted or truncated
// segment in the middle. The journal names the file, the byte and the
// sequences lost, keeps (and reads) every valid batch after the damage,
// and asks for a full resync when unacknowledged sequences were lost. A
// garbage checkpoint names its file.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { listSegments, scanSegment } from '../../dist/journal/segments.js'
import { replayJournal } from '../../dist/apply/replay.js'

const w = (i, n = 1000) => ({ kind: 'write', vol: 0, path: `f${i % 3}`, off: i * n, data: Buffer.alloc(n, i & 255) })
const segmentBytes = 16 * 1024

/** A journal of 60 one-record batches over several segments. */
async function made () {
  const dir = join(tempDir('journal-damage'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes })
  for (let i = 0; i < 60; i++) j.appendRecords([w(i)], false)
  await j.close()
  return { dir, segs: await listSegments(dir) }
}

async function seqs (j, from = 1) {
  const out = []
  for await (const { batch } of j.read(from)) out.push(batch.seq)
  return out
}

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i)

/** Flips one byte inside the payload of frame `n` of a segment. */
async function flip (path, n) {
  const scan = await scanSegment(path)
  const off = scan.batches[n].offset + 8 + 20
  const fd = fs.openSync(path, 'r+')
  const b = Buffer.alloc(1)
  fs.readSync(fd, b, 0, 1, off)
  b[0] ^= 0xff
  fs.writeSync(fd, b, 0, 1, off)
  fs.closeSync(fd)
  return scan.batches[n]
}

test('a flipped byte in the middle of the newest segment: named, not cut, valid batches after it kept', async () => {
  const { dir, segs } = await made()
  const newest = segs[segs.length - 1].path
  const sizeBefore = fs.statSync(newest).size
  const hit = await flip(newest, 1)
  const j = await Journal.open(dir, { group: 'g', segmentBytes })
  assert.is(j.recovery, null, 'not a torn tail')
  assert.is(fs.statSync(newest).size, sizeBefore, 'nothing cut')
  assert.is(j.nextSeq, 61, 'the sequence continues after the last valid batch')
  assert.is(j.damage.length, 1)
  const d = j.damage[0]
  assert.is(d.file, newest)
  assert.is(d.offset, hit.offset)
  assert.is(d.fromSeq, hit.batch.seq)
  assert.is(d.toSeq, hit.batch.seq)
  assert.match(d.reason, /crc/)
  assert.ok(j.checkpoint.resyncFull, 'unacknowledged sequences lost: a full resync is asked for')
  assert.equal(await seqs(j), range(1, 60).filter(s => s !== hit.batch.seq))
  const a = j.appendRecords([w(99)], false)
  assert.is(a.seq, 61)
  await j.close()
  const again = await Journal.open(dir, { group: 'g', segmentBytes })
  assert.ok(again.checkpoint.resyncFull, 'the request survives a restart')
  await again.close()
})

test('a flipped byte in an older segment: named by file, byte and sequences; read goes on past it', async () => {
  const { dir, segs } = await made()
  const hit = await flip(segs[1].path, 2)
  const j = await Journal.open(dir, { group: 'g', segmentBytes })
  assert.is(j.nextSeq, 61)
  assert.equal(await seqs(j), range(1, 60).filter(s => s !== hit.batch.seq))
  assert.is(j.damage.length, 1)
  assert.is(j.damage[0].file, segs[1].path)
  assert.is(j.damage[0].offset, hit.offset)
  assert.equal([j.damage[0].fromSeq, j.damage[0].toSeq], [hit.batch.seq, hit.batch.seq])
  await j.close()
})

test('a deleted or truncated segment in the middle: the missing sequences are named', async () => {
  for (const how of ['delete', 'truncate']) {
    const { dir, segs } = await made()
    const victim = segs[1]
    const scan = await scanSegment(victim.path)
    const lastInVictim = scan.batches[scan.batches.length - 1].batch.seq
    let lostFrom = victim.first
    if (how === 'delete') fs.rmSync(victim.path)
    else { fs.truncateSync(victim.path, scan.batches[1].offset); lostFrom = scan.batches[1].batch.seq }
    const j = await Journal.open(dir, { group: 'g', segmentBytes })
    assert.is(j.nextSeq, 61, how)
    const got = await seqs(j)
    assert.equal(got, range(1, 60).filter(s => s < lostFrom || s > lastInVictim), how)
    const d = j.damage.find(x => x.fromSeq === lostFrom)
    assert.ok(d, `${how}: ${JSON.stringify(j.damage)}`)
    assert.is(d.toSeq, lastInVictim, how)
    assert.ok(j.checkpoint.resyncFull, how)
    await j.close()
  }
})

test('damage in the acknowledged part is named but asks for no resync', async () => {
  const { dir, segs } = await made()
  let j = await Journal.open(dir, { group: 'g', segmentBytes })
  await j.setCheckpoint({ acked: 60 })
  await j.close()
  await flip(segs[segs.length - 1].path, 0)
  j = await Journal.open(dir, { group: 'g', segmentBytes })
  assert.is(j.damage.length, 1)
  assert.not.ok(j.checkpoint.resyncFull)
  await j.close()
})

test('replay stops at a hole, naming it, rather than build a copy across it', async () => {
  const { dir, segs } = await made()
  const hit = await flip(segs[1].path, 1)
  const j = await Journal.open(dir, { group: 'g', segmentBytes, readOnly: true })
  const err = await replayJournal(j, new Map(), { from: hit.batch.seq }).then(() => null, e => e)
  assert.ok(err, 'replayed across the hole')
  assert.is(err.code, 'JOURNAL_DAMAGE')
  assert.ok(err.message.includes(segs[1].path), err.message)
  await j.close()
})

test('a garbage checkpoint: STATE_DAMAGED naming the file', async () => {
  const { dir } = await made()
  fs.writeFileSync(join(dir, 'checkpoint.cbor'), Buffer.from('\xff\x00garbage-not-cbor\x13', 'latin1'))
  const err = await Journal.open(dir, { group: 'g', segmentBytes }).then(() => null, e => e)
  assert.ok(err, 'opened')
  assert.is(err.code, 'STATE_DAMAGED')
  assert.ok(err.message.includes(join(dir, 'checkpoint.cbor')), err.message)
  assert.match(err.hint, /resync/)
})

test.run()
