// A journal that ends before the sequence its checkpoint records (the newest
// segment truncated or deleted while the daemon was down: the fault
// campaign's truncate/delete kinds) is damage, not a torn tail: named, and
// the journal goes on after the checkpoint's sequence with its chain hash,
// so no sequence number is given twice (the peer holds the lost ones).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { listSegments } from '../../dist/journal/segments.js'

const w = i => ({ kind: 'write', vol: 0, path: 'f', off: i * 1000, data: Buffer.alloc(1000, i & 255) })

async function made () {
  const dir = join(tempDir('lost-tail'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 16 * 1024 })
  for (let i = 0; i < 60; i++) j.appendRecords([w(i)], false)
  const hash = Buffer.from(j.lastHash)
  await j.setCheckpoint({ acked: 60, ackedHash: hash })
  await j.close()
  return { dir, hash, segs: await listSegments(dir) }
}

for (const how of ['truncate', 'delete']) {
  test(`the newest segment ${how}d below the acknowledged sequence: named, sequences never reused`, async () => {
    const { dir, hash, segs } = await made()
    const newest = segs[segs.length - 1]
    if (how === 'delete') fs.rmSync(newest.path)
    else fs.truncateSync(newest.path, 0)
    const j = await Journal.open(dir, { group: 'g', segmentBytes: 16 * 1024 })
    assert.is(j.nextSeq, 61, 'the journal goes on after the acknowledged sequence')
    assert.ok(Buffer.from(j.lastHash).equals(hash), 'with its chain hash')
    assert.is(j.damage.length, 1, JSON.stringify(j.damage))
    assert.match(j.damage[0].reason, /ends at sequence \d+, before sequence 60/)
    assert.is(j.damage[0].toSeq, 60)
    assert.not.ok(j.checkpoint.resyncFull, 'the lost sequences were acknowledged: no full resync')
    const a = j.appendRecords([w(61)], false)
    assert.is(a.seq, 61)
    await j.close()
    const again = await Journal.open(dir, { group: 'g', segmentBytes: 16 * 1024 })
    assert.is(again.nextSeq, 62)
    const seqs = []
    for await (const { batch } of again.read(61)) seqs.push(batch.seq)
    assert.equal(seqs, [61])
    await again.close()
  })
}

test.run()
