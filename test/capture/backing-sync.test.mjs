// The backing sync (capture/backing-sync.ts) on real directories and a real
// syncfs: every 30 s, and sooner once the journal has grown by its bound or
// by as much as the state directory's filesystem has left; each pass writes
// the backing point (the sequence appended before it) that a power loss's
// redo starts from, and the journal's trim floor follows it; on a full
// state directory the point goes into the journal's reserve.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { tempDir } from '../helpers/mount.mjs'
import { waitFor } from '../helpers/pair.mjs'
import { BackingSync } from '../../dist/capture/backing-sync.js'
import { readBackingPoint, writeBackingPoint } from '../../dist/journal/backing-point.js'
import { openPrimary } from '../../dist/cli/primary.js'
import { syncVolumes } from '../../dist/apply/redo.js'
import { Journal } from '../../dist/journal/journal.js'

const MiB = 1024 * 1024
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** A tmpfs of `sizeMiB` mounted for `fn(dir)`, unmounted after. */
async function onSmallFs (name, sizeMiB, fn) {
  const dir = join(tempDir('backing-sync'), name)
  fs.mkdirSync(dir)
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir])
  try {
    await fn(dir)
  } finally {
    execFileSync('umount', [dir])
  }
}

/** Takes every free block of the filesystem of `dir`. */
function fillUp (dir) {
  const fill = fs.openSync(join(dir, 'filler'), 'w')
  try {
    for (;;) fs.writeSync(fill, Buffer.alloc(64 * 1024))
  } catch (err) {
    assert.is(err.code, 'ENOSPC')
  } finally {
    fs.closeSync(fill)
  }
}

/** A backing sync over a fresh volume directory, and the counters it reads. */
function setup (stateDir, boundBytes, writeFull) {
  const base = tempDir('backing-sync')
  const vol = join(base, 'vol')
  fs.mkdirSync(vol)
  fs.mkdirSync(stateDir, { recursive: true })
  const at = { written: 0, seq: 0, syncs: 0 }
  const lines = []
  const sync = new BackingSync(stateDir, [{ num: 0, name: 'data', kind: 'dir', path: vol, size: 0 }], {
    syncfs: async specs => { at.syncs++; await syncVolumes(specs) },
    appended: async () => at.seq,
    journalWritten: () => at.written,
    boundBytes,
    log: l => lines.push(l),
    writeFull
  })
  return { sync, at, lines, vol }
}

test('a pass once the journal grew by the bound, none before; the point is what was appended', async () => {
  const state = join(tempDir('backing-sync'), 'state')
  const { sync, at } = setup(state, 4 * MiB)
  sync.start()
  try {
    at.seq = 10
    at.written = 3 * MiB
    await sleep(700) // the growth is looked at 4 times a second
    assert.is(at.syncs, 0, 'no pass below the bound (the period is 30 s)')
    assert.is(readBackingPoint(state), null)
    at.written = 5 * MiB
    await waitFor(() => readBackingPoint(state)?.seq === 10, 5000, 'the point at sequence 10')
    assert.is(sync.synced, 10)
    // The growth counts from the last pass, not from the start.
    at.seq = 20
    at.written = 8 * MiB
    await sleep(700)
    assert.is(readBackingPoint(state).seq, 10, 'grown 3 MiB since the last pass: none yet')
    at.written = 9.5 * MiB
    await waitFor(() => readBackingPoint(state)?.seq === 20, 5000, 'the point at sequence 20')
  } finally {
    await sync.stop()
  }
})

test('a counter that started again is a new base, not a growth', async () => {
  const state = join(tempDir('backing-sync'), 'state')
  const { sync, at } = setup(state, 4 * MiB)
  at.written = 100 * MiB // the core's counter before the mount reopened
  sync.start()
  try {
    at.seq = 3
    at.written = 1 * MiB
    await sleep(700)
    assert.is(at.syncs, 0)
    at.written = 6 * MiB
    await waitFor(() => readBackingPoint(state)?.seq === 3, 5000, 'the point at sequence 3')
  } finally {
    await sync.stop()
  }
})

test('stop: a last pass to what was appended; nothing appended since, no pass', async () => {
  const state = join(tempDir('backing-sync'), 'state')
  const { sync, at } = setup(state, 1 << 30)
  sync.start()
  at.seq = 7
  await sync.stop()
  assert.is(readBackingPoint(state).seq, 7)
  assert.is(at.syncs, 1)
  await sync.syncNow()
  assert.is(at.syncs, 1, 'the point already holds sequence 7')
})

test('the state filesystem\'s room brings it forward: the journal held for a redo never fills it', async () => {
  await onSmallFs('small', 8, async dir => {
    const state = join(dir, 'state')
    const { sync, at } = setup(state, 1 << 30) // a bound far past the filesystem's size
    try {
      fs.writeFileSync(join(dir, 'filler'), Buffer.alloc(5 * MiB)) // about 3 MiB left
      sync.start()
      at.seq = 5
      at.written = 1 * MiB
      await sleep(700)
      assert.is(at.syncs, 0, 'grown less than the room left')
      at.written = 4 * MiB
      await waitFor(() => readBackingPoint(state)?.seq === 5, 5000, 'a pass once the growth reached the room left')
    } finally {
      await sync.stop().catch(() => {})
    }
  })
})

test('a full state directory: the point is written in the journal\'s reserve, not given up', async () => {
  await onSmallFs('full', 4, async dir => {
    const state = join(dir, 'state')
    const j = await Journal.open(state, { group: 'g' })
    try {
      assert.ok(j.keepReserve(), 'the reserve made')
      fillUp(dir) // every block taken (the journal filled the directory, say)
      const plain = setup(state, 1 << 30)
      plain.at.seq = 9
      try {
        await plain.sync.syncNow()
        assert.unreachable('the point written with no room')
      } catch (err) {
        assert.is(err.code, 'ENOSPC', String(err))
      }
      assert.is(plain.sync.synced, 0, 'not synced: the floor stays')
      const made = setup(state, 1 << 30, (err, write) => j.writeWithReserve(err, write))
      made.at.seq = 9
      await made.sync.syncNow()
      assert.is(readBackingPoint(state).seq, 9)
      assert.is(made.sync.synced, 9)
    } finally {
      await j.close().catch(() => {})
    }
  })
})

test('a primary\'s recovery on a full state directory trims only below the point on disk', async () => {
  const vol = join(tempDir('backing-sync'), 'vol')
  fs.mkdirSync(vol)
  const spec = { group: 'g', single: false, volumes: [{ num: 0, name: 'data', kind: 'dir', path: vol, size: 0 }] }
  const w = i => ({ kind: 'write', vol: 0, path: 'f', off: i * 1000, data: Buffer.alloc(1000, i & 255) })
  await onSmallFs('open', 4, async dir => {
    const state = join(dir, 'state')
    // 120 records in segments of 32 KiB, all acknowledged by a peer; the
    // backing store synced through 40 on this boot (a kill -9 since: the
    // rest is in its page cache, and in the journal for a power loss).
    const j = await Journal.open(state, { group: 'g', segmentBytes: 32 * 1024 })
    j.trimFloor = () => 40 // the running primary's: its backing sync's point
    for (let i = 1; i <= 120; i++) j.appendRecords([w(i)], false)
    await j.ack(120)
    assert.ok(j.firstSeq > 1 && j.firstSeq <= 41, `the running primary kept what its point had not covered: from ${j.firstSeq}`)
    await j.close()
    await writeBackingPoint(state, 40)
    fs.writeFileSync(join(state, 'lock'), '999999999\n') // the killed daemon's: its page is what the new lock takes
    fillUp(dir)
    const p = await openPrimary(spec, state, () => {})
    try {
      // An append there (the recovery's restate) finds no room: it trims what it may.
      let full = null
      try { p.journal.appendRecords([{ ...w(121), data: Buffer.alloc(256 * 1024, 1) }], false) } catch (err) { full = err }
      assert.ok(full, 'the append found no room')
      assert.ok(p.journal.firstSeq <= 41, `sequences past the point kept for a redo: the journal starts at ${p.journal.firstSeq}`)
      assert.ok(p.journal.firstSeq > 1, 'what the point covers went')
    } finally {
      await p.journal.close().catch(() => {})
    }
  })
})

test.run()
