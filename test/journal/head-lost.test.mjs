// A primary's journal whose first segment starts past what its checkpoint
// accounts for (the peer's acknowledgement, or retention's drops) lost a
// segment while the daemon was down: named, with a full resync asked for.
// Before, the hole read as an overflow, and the partial resync of the dirty
// set that followed did not hold what the segment did (the fault campaign,
// FAULT_SEED=487577060 run 5).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { listSegments } from '../../dist/journal/segments.js'

const w = i => ({ kind: 'write', vol: 0, path: 'f', off: i * 1000, data: Buffer.alloc(1000, i & 255) })
const segmentBytes = 16 * 1024

/** 60 batches over several segments, the checkpoint as `cp` says; the oldest segment deleted. */
async function firstDeleted (cp) {
  const dir = join(tempDir('head-lost'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes })
  for (let i = 0; i < 60; i++) j.appendRecords([w(i)], false)
  await j.setCheckpoint(cp)
  await j.close()
  const segs = await listSegments(dir)
  fs.rmSync(segs[0].path)
  return { dir, next: segs[1].first }
}

test('the oldest segment deleted past the acknowledged sequence: named, a full resync asked for', async () => {
  const { dir, next } = await firstDeleted({ acked: 3 })
  const j = await Journal.open(dir, { group: 'g', segmentBytes })
  await j.noteHeadLost()
  assert.is(j.damage.length, 1, JSON.stringify(j.damage))
  assert.is(j.damage[0].fromSeq, 4)
  assert.is(j.damage[0].toSeq, next - 1)
  assert.match(j.damage[0].reason, new RegExp(`first segment starts at sequence ${next}, past sequence 3`))
  assert.ok(j.checkpoint.resyncFull, 'unacknowledged sequences lost: the next resync is full')
  await j.close()
})

test('the oldest segment gone within what is acknowledged, or what retention dropped: nothing to name', async () => {
  for (const cp of [{ acked: 59 }, { acked: 3, dropped: 40 }]) {
    const { dir, next } = await firstDeleted(cp)
    assert.ok(next - 1 <= 40, 'the segment is within the accounted part')
    const j = await Journal.open(dir, { group: 'g', segmentBytes })
    await j.noteHeadLost()
    assert.is(j.damage.length, 0, `${JSON.stringify(cp)}: ${JSON.stringify(j.damage)}`)
    assert.not.ok(j.checkpoint.resyncFull)
    await j.close()
  }
})

test.run()
