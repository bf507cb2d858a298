// The backing sync (capture/backing-sync.ts) on real directories and a real
// syncfs: every 30 s, and sooner once the journal has grown by its bound or
// by as much as the state directory's filesystem has left; each pass writes
// the backing point (the sequence appended before it) that a power loss's
// redo starts from, and the journal's trim floor follows it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { tempDir } from '../helpers/mount.mjs'
import { waitFor } from '../helpers/pair.mjs'
import { BackingSync } from '../../dist/capture/backing-sync.js'
import { readBackingPoint } from '../../dist/journal/backing-point.js'
import { syncVolumes } from '../../dist/apply/redo.js'

const MiB = 1024 * 1024
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** A backing sync over a fresh volume directory, and the counters it reads. */
function setup (stateDir, boundBytes) {
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
    log: l => lines.push(l)
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
  const dir = join(tempDir('backing-sync'), 'small')
  fs.mkdirSync(dir)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir])
  let sync = null
  try {
    const state = join(dir, 'state')
    const made = setup(state, 1 << 30) // a bound far past the filesystem's size
    sync = made.sync
    const at = made.at
    fs.writeFileSync(join(dir, 'filler'), Buffer.alloc(5 * MiB)) // about 3 MiB left
    sync.start()
    at.seq = 5
    at.written = 1 * MiB
    await sleep(700)
    assert.is(at.syncs, 0, 'grown less than the room left')
    at.written = 4 * MiB
    await waitFor(() => readBackingPoint(state)?.seq === 5, 5000, 'a pass once the growth reached the room left')
  } finally {
    await sync?.stop().catch(() => {})
    execFileSync('umount', [dir])
  }
})

test.run()
