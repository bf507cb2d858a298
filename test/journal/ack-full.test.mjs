// An acknowledgement on a state directory without one free byte (the
// journal took them all): the checkpoint that lets segments be trimmed is a
// new file, so before the reserve nothing was ever trimmed again and the
// directory stayed full for good (FAULT_SEED=13 FAULT_ONLY=5). With the
// reserve (journal/reserve.ts) the checkpoint is written from it, the
// acknowledged segments are trimmed, and the reserve is made again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, sh } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { readCheckpoint } from '../../dist/journal/checkpoint.js'
import { listSegments } from '../../dist/journal/segments.js'

const w = (i) => ({ kind: 'write', vol: 0, path: 'f', off: i * 16384, data: Buffer.alloc(16384, i & 255) })

test('ack on a full state directory: checkpoint written from the reserve, segments trimmed, reserve made again', async () => {
  const root = join(tempDir('journal-ackfull'), 'fs')
  fs.mkdirSync(root)
  sh(`mount -t tmpfs -o size=2m,mode=0700 replfs-test-ack-full ${root}`)
  const dir = join(root, 'state')
  let j
  try {
    j = await Journal.open(dir, { group: 'g', segmentBytes: 64 * 1024 })
    assert.ok(j.keepReserve(), 'the reserve is made while there is room')
    let n = 0
    for (;;) { // the journal takes every byte
      try { j.appendRecords([w(n)], false); n++ } catch { break }
      if (n > 1000) throw new Error('the filesystem never filled')
    }
    // What a record did not fit in (the journal cuts a short write back) taken too.
    const left = fs.statfsSync(root).bavail * fs.statfsSync(root).bsize
    if (left > 0) sh(`fallocate -l ${left} ${join(root, 'filler')}`)
    assert.is(fs.statfsSync(root).bavail, 0, 'not one free block')
    const segs = (await listSegments(dir)).length
    await j.ack(n - 1)
    assert.is((await readCheckpoint(dir)).acked, n - 1, 'the checkpoint is on disk')
    assert.ok((await listSegments(dir)).length < segs, 'acknowledged segments trimmed')
    assert.is(fs.statSync(join(dir, 'reserve')).size, 64 * 1024, 'the reserve made again')
  } finally {
    await j?.close().catch(() => {})
    sh(`umount -l ${root}`)
  }
})

test.run()
