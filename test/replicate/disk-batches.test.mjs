// The sender's reads from disk (replicate/disk-batches.ts): batch after batch
// in order, and past the end the journal had when the reading began; payloads
// lent from reused buffers: one held stays intact while the reads go on, and
// the buffers come back once released.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { DiskBatches } from '../../dist/replicate/disk-batches.js'
import { decodeBatch } from '../../dist/journal/codec.js'

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

test('lent payloads: a held one stays intact over later reads; the buffers are reused once released', async () => {
  const j = await Journal.open(join(tempDir('disk-batches-lent'), 'state'), { group: 'g' })
  try {
    // 1 MiB batches: four to a 4 MiB read, less their frames: about 3 per read
    const mib = (i) => ({ kind: 'write', vol: 0, path: 'f', off: i << 20, data: Buffer.alloc((1 << 20) - 4096, i) })
    for (let i = 1; i <= 40; i++) j.appendRecords([mib(i)], false)
    const disk = new DiskBatches(j)
    const held = []
    const arrays = new Set()
    for (let want = 1; want <= 40; want++) {
      const e = await disk.next(want)
      assert.is(e.batch.seq, want)
      arrays.add(e.payload.buffer)
      if (want % 10 === 0) { j.buffers.hold(e.payload); held.push({ seq: want, payload: e.payload }) }
    }
    for (const h of held) {
      const b = decodeBatch(h.payload)
      assert.is(b.seq, h.seq)
      assert.ok(b.records[0].data.every(x => x === h.seq), `batch ${h.seq} intact while held`)
    }
    assert.is(j.buffers.inUse, held.length, 'the held ones\' (the reader\'s own among them: it holds batch 40)')
    assert.ok(arrays.size <= held.length + 3, `${arrays.size} buffers for 40 MiB read: reused`)
    for (const h of held) j.buffers.release(h.payload)
    disk.close()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.is(j.buffers.inUse, 0, 'all back once released and the reader closed')
  } finally {
    await j.close()
  }
})

test.run()
