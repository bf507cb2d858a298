// The sender's reads from disk (replicate/disk-batches.ts): batch after batch
// in order, and past the end the journal had when the reading began.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { DiskBatches } from '../../dist/replicate/disk-batches.js'

const w = (i) => ({ kind: 'write', vol: 0, path: 'f', off: i * 100, data: Buffer.alloc(100, i) })

async function next (disk, want) {
  const e = await disk.next(want)
  return e && [e.batch.seq, e.batch.records[0].data[0]]
}

test('batches appended after a reader began are read by the same caller, not taken for the end', async () => {
  const j = await Journal.open(join(tempDir('disk-batches'), 'state'), { group: 'g' })
  try {
    for (let i = 1; i <= 3; i++) j.appendRecords([w(i)], false)
    const disk = new DiskBatches(j)
    assert.equal(await next(disk, 1), [1, 1])
    // The pump took the wake for these while the reader above was under way.
    for (let i = 4; i <= 5; i++) j.appendRecords([w(i)], false)
    const got = []
    for (let want = 2; want <= 5; want++) got.push(await next(disk, want))
    assert.equal(got, [[2, 2], [3, 3], [4, 4], [5, 5]])
    assert.is(await disk.next(6), null, 'null at the end of the journal')
    j.appendRecords([w(6)], false)
    assert.equal(await next(disk, 6), [6, 6], 'and on when more came')
    assert.equal(await next(disk, 2), [2, 2], 'a batch asked again is read again (a resend after a reconnect)')
    disk.close()
    assert.is(await disk.next(3), null, 'nothing once closed (the session ended)')
  } finally {
    await j.close()
  }
})

test.run()
