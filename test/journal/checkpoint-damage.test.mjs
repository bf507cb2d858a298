// A flipped bit anywhere in a checkpoint (the fault campaign's cpflip kinds)
// is never read as other values silently: the checkpoint is two framed copies
// (CRC32C each); a damaged copy is named and the other one read, and the
// journal heals the file at open. A checkpoint in the older, unframed format
// is still read.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { readCheckpoint, writeCheckpoint } from '../../dist/journal/checkpoint.js'
import { encodeValue } from '../../dist/journal/codec.js'
import { Journal } from '../../dist/journal/journal.js'

const cp = {
  acked: 123456, generation: '0123456789abcdef', appliedSeq: 98765, ackedHash: new Uint8Array(16).fill(7),
  resyncFull: false, history: [{ gen: '0123456789abcdef', from: 1 }]
}
const view = c => JSON.stringify({ ...c, ackedHash: c.ackedHash && Buffer.from(c.ackedHash).toString('hex') })

test('every single-bit flip of a checkpoint: the same values, the damage named', async () => {
  const dir = tempDir('cp-flip')
  await writeCheckpoint(dir, cp)
  const file = join(dir, 'checkpoint.cbor')
  const good = fs.readFileSync(file)
  const want = view(await readCheckpoint(dir))
  let named = 0
  for (let at = 0; at < good.length; at++) {
    for (let bit = 0; bit < 8; bit++) {
      const bad = Buffer.from(good)
      bad[at] ^= 1 << bit
      fs.writeFileSync(file, bad)
      const said = []
      const got = await readCheckpoint(dir, w => said.push(w)).catch(e => e)
      assert.ok(!(got instanceof Error), `byte ${at} bit ${bit}: ${got.message}`)
      assert.is(view(got), want, `byte ${at} bit ${bit}: read as other values`)
      assert.is(said.length, 1, `byte ${at} bit ${bit}: the damage is named`)
      assert.ok(said[0].includes(file), said[0])
      named++
    }
  }
  assert.is(named, good.length * 8)
})

test('both copies damaged: STATE_DAMAGED naming the file', async () => {
  const dir = tempDir('cp-flip2')
  await writeCheckpoint(dir, cp)
  const file = join(dir, 'checkpoint.cbor')
  const bad = fs.readFileSync(file)
  bad[10] ^= 1; bad[bad.length / 2 + 10] ^= 1
  fs.writeFileSync(file, bad)
  const err = await readCheckpoint(dir).catch(e => e)
  assert.is(err.code, 'STATE_DAMAGED')
  assert.ok(err.message.includes(file) && /both copies/.test(err.message), err.message)
})

test('an unframed checkpoint (older format) is read', async () => {
  const dir = tempDir('cp-legacy')
  fs.writeFileSync(join(dir, 'checkpoint.cbor'), encodeValue(cp))
  assert.is(view(await readCheckpoint(dir)), view(await readCheckpoint(dir)))
  assert.is((await readCheckpoint(dir)).acked, 123456)
})

test('the journal names a damaged copy at open and heals the file', async () => {
  const dir = join(tempDir('cp-journal'), 'state')
  const j = await Journal.open(dir, { group: 'g' })
  j.appendRecords([{ kind: 'mkdir', vol: 0, path: 'd', mode: 0o755 }], false)
  await j.setCheckpoint({ acked: 1 })
  await j.close()
  const file = join(dir, 'checkpoint.cbor')
  const bad = fs.readFileSync(file); bad[12] ^= 0x10
  fs.writeFileSync(file, bad)
  const j2 = await Journal.open(dir, { group: 'g' })
  assert.is(j2.checkpoint.acked, 1)
  assert.is(j2.stateDamage.length, 1)
  assert.match(j2.stateDamage[0], /checkpoint damaged: .*copy 1 of 2 .*nothing lost/)
  await j2.close()
  const said = []
  await readCheckpoint(dir, w => said.push(w))
  assert.is(said.length, 0, 'healed')
})

test.run()
