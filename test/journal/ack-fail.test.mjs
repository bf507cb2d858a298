// An acknowledgement whose checkpoint cannot be written (state directory
// full or failing) throws, trims nothing and leaves the journal's idea of
// the checkpoint as it is on disk; the same ack written later succeeds and
// trims. (The primary's replicator logs it and retries: an unhandled
// rejection there used to kill the daemon.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { listSegments } from '../../dist/journal/segments.js'

const w = (i) => ({ kind: 'write', vol: 0, path: 'f', off: i * 1000, data: Buffer.alloc(1000, i & 255) })

test('ack with an unwritable checkpoint: throws, trims nothing, retried later', async () => {
  const dir = join(tempDir('journal-ackfail'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 8 * 1024 })
  for (let i = 0; i < 40; i++) j.appendRecords([w(i)], false)
  await j.sync()
  const segs = (await listSegments(dir)).length
  assert.ok(segs > 2)
  fs.mkdirSync(join(dir, 'checkpoint.cbor.tmp')) // the temporary file cannot be made
  const err = await j.ack(30).then(() => null, e => e)
  assert.ok(err, 'the failed checkpoint write is reported')
  assert.is(j.checkpoint.acked, 0, 'the in-memory checkpoint is what is on disk')
  assert.is((await listSegments(dir)).length, segs, 'nothing trimmed')
  fs.rmdirSync(join(dir, 'checkpoint.cbor.tmp'))
  await j.ack(30)
  assert.is(j.checkpoint.acked, 30)
  assert.ok((await listSegments(dir)).length < segs, 'trimmed once written')
  await j.close()
})

test('an ack without its hash keeps no hash: the older one belongs to another sequence', async () => {
  const dir = join(tempDir('journal-ackhash'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 8 * 1024 })
  for (let i = 0; i < 40; i++) j.appendRecords([w(i)], false)
  await j.sync()
  const h10 = await j.hashAt(10)
  await j.ack(10, h10)
  assert.equal(Buffer.from(j.checkpoint.ackedHash), h10)
  await j.ack(20)
  assert.is(j.checkpoint.acked, 20)
  assert.is(j.checkpoint.ackedHash, undefined, 'the hash of sequence 10 is not the hash of 20')
  const h20 = await j.hashAt(20)
  assert.ok(h20 && !h20.equals(h10), 'sequence 20 still has its own hash from the journal')
  await j.close()
})

test.run()
