// The fault campaign's judge of a deleted segment (scripts/faults/places.mjs
// cutSegment): a deletion counts as harmless, nothing a daemon must report,
// only when the whole segment lies at or below the acknowledged sequence
// (a kill came before the trim ran), or, on a primary that tracks
// changes, when its saved dirty set holds every record in it past that
// point; any other must be reported.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import fs from 'node:fs'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { writeBackingPoint } from '../../dist/journal/backing-point.js'
import { cursorFile } from '../../dist/journal/applied-cursor.js'
import { DirtySet } from '../../dist/capture/dirty-set.js'
import { cutSegment, harmless } from '../../scripts/faults/places.mjs'

const w = (i) => ({ kind: 'write', vol: 0, path: 'f', off: i * 100, data: Buffer.alloc(40 * 1024, i) })
const first = () => 0 // picks the oldest segment

/** A journal of three segments (batches 1-2, 3-4, 5), acknowledged through `acked`. */
async function journalAt (acked) {
  const dir = join(tempDir('cut-segment'), 'state')
  const j = await Journal.open(dir, { group: 'g', segmentBytes: 64 * 1024 })
  for (let i = 1; i <= 5; i++) j.appendRecords([w(i)], false)
  await j.setCheckpoint({ acked })
  await j.close()
  assert.equal(fs.readdirSync(dir).filter(n => n.endsWith('.seg')).length, 3)
  return dir
}

test('a primary: harmless only at or below the acknowledged sequence, the backing store\'s sync point or not', async () => {
  let dir = await journalAt(2)
  await writeBackingPoint(dir, 2)
  assert.ok(harmless(await cutSegment(dir, first, 'delete')), 'batches 1-2 acknowledged and synced: a trim would delete them')

  // Only a power loss needs what the backing store's disk lacks, and none is
  // played with a deleted segment: on this boot the page cache holds it.
  dir = await journalAt(2)
  await writeBackingPoint(dir, 1)
  assert.ok(harmless(await cutSegment(dir, first, 'delete')), 'batch 2 acknowledged, in the page cache')

  dir = await journalAt(1)
  await writeBackingPoint(dir, 5)
  assert.not.ok(harmless(await cutSegment(dir, first, 'delete')), 'batch 2 not acknowledged: the secondary needs it')
})

test('a secondary (an applied cursor): the acknowledged sequence alone; the newest segment never', async () => {
  let dir = await journalAt(2)
  fs.writeFileSync(join(dir, cursorFile), '')
  assert.ok(harmless(await cutSegment(dir, first, 'delete')))

  dir = await journalAt(5)
  fs.writeFileSync(join(dir, cursorFile), '')
  const last = () => 0.99 // picks the newest segment
  assert.not.ok(harmless(await cutSegment(dir, last, 'delete')), 'where the newest segment ends is not known here')
})

test('a primary that tracks: harmless when its saved dirty set holds every record of the segment past the trim point', async () => {
  const tracking = async (records) => {
    const dir = await journalAt(0)
    const d = new DirtySet(join(dir, 'dirty.cbor'))
    for (const r of records) d.add(r)
    await d.save()
    return dir
  }
  assert.ok(harmless(await cutSegment(await tracking([w(1), w(2), w(3)]), first, 'delete')), 'batches 1-2 folded into the set')
  assert.not.ok(harmless(await cutSegment(await tracking([w(1)]), first, 'delete')), 'batch 2 is not in the set')
  assert.not.ok(harmless(await cutSegment(await tracking([]), first, 'delete')), 'an empty set tracks nothing')
})

test.run()
