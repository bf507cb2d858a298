// timeout: 240
// Journal overflow with the secondary down (--journal-max 8M):
//   block: a writer going past the limit waits (still blocked seconds
//          later), and completes once the secondary is back and acknowledges;
//   track: the writer goes on past the limit, status shows tracking, the
//          backing store is synced before the journal drops (no background
//          sync in the test's time); when
//          the secondary is back, a partial resync sends exactly the
//          tracked extents (not the whole file), then the journal resumes.
//          While it tracks, an application's fsync reaches the backing
//          file (no journal record can redo it after a power loss), and
//          after, until a backing sync has put what it tracked on disk.
// And under track, a pair that keeps up goes on streaming at the limit: the
// segments acknowledged but held for the backing store go first.
// All end with the replica identical.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn, execFileSync } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, waitFor, stopAll, differences, status, sleep, within, resyncsIn } from '../helpers/pair.mjs'

const MiB = 1 << 20
const chunk = 256 * 1024

// Writes `count` chunks of 256 KiB into FILE at offset i * stride, logging
// each returned write to LOG (outside the mount).
const writer = `
const fs = require('fs')
const [file, log, count, stride] = process.argv.slice(1)
const fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w')
const out = fs.openSync(log, 'a')
for (let i = 0; i < Number(count); i++) {
  fs.writeSync(fd, Buffer.alloc(${chunk}, (i * 13 + 1) % 256), 0, ${chunk}, i * Number(stride))
  fs.writeSync(out, i + '\\n')
}
fs.closeSync(fd)
`
/** The backing files the daemon `pid` fsynced (fsync or fdatasync, any
 *  thread) while an application wrote FILE and fsynced it. */
async function fsyncedWhile (pid, file, base) {
  const out = join(base, 'strace.txt')
  const st = spawn('strace', ['-f', '-y', '-e', 'trace=fsync,fdatasync', '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  st.stderr.on('data', d => { err += d })
  try {
    await waitFor(() => /attached/.test(err), 10_000, 'strace attached')
    await sleep(300) // every thread of the daemon
    execFileSync('python3', ['-c', 'import os,sys\nfd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT, 0o644)\nos.write(fd, b"x"*4096)\nos.fsync(fd)\nos.close(fd)', file], { timeout: 20_000 })
  } finally {
    st.kill('SIGINT')
    await new Promise(resolve => st.on('exit', resolve))
  }
  // Whole (`fsync(5</x>) = 0`) or split by another thread's call (`fsync(5</x> <unfinished ...>`).
  return [...fs.readFileSync(out, 'utf8').matchAll(/f(?:data)?sync\(\d+<([^>]*)>/g)].map(m => m[1])
}

function startWriter (file, log, count, stride) {
  const p = spawn(process.execPath, ['-e', writer, file, log, String(count), String(stride)], { stdio: 'inherit' })
  const done = new Promise(resolve => p.on('exit', code => resolve(code)))
  return { proc: p, done, returned: () => { try { return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length } catch { return 0 } } }
}

test('overflow block: writes past the limit wait for the secondary', bounded(80_000, async () => {
  const L = layout('pair-ovf-block', { vols: ['one'] })
  let pri, sec, w
  try {
    ({ pri, sec } = await startPair(L, 17150, { pextra: ['--journal-max', '8M', '--on-overflow', 'block'] }))
    await sec.kill9()
    w = startWriter(join(L.mnt, 'one', 'big'), join(L.base, 'w.log'), 96, chunk) // 24 MiB: three times the limit
    await waitFor(async () => (await status(L.pstate)).journalBytes >= 8 * MiB, 20_000, 'the journal at its limit')
    const n1 = w.returned()
    await sleep(3000)
    const n2 = w.returned()
    assert.equal(n2, n1, `the writer stays blocked at the limit (${n1} then ${n2} writes)`)
    assert.ok(n2 < 96, 'the writer has not finished')
    const st = await status(L.pstate)
    assert.ok(st.journalBytes < 8 * MiB + 2 * MiB, `the journal stays near its limit: ${st.journalBytes}`)
    assert.match(pri.err, /journal full .* new writes wait/)
    sec = await startSecondary(L, 17150)
    const code = await within(w.done, 40_000, 'still blocked')
    assert.equal(code, 0, 'the writer completes once the secondary is back')
    await waitSynced(L, 30_000)
  } finally {
    w?.proc.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test('overflow track: writes go on, the tracked extents are resynced exactly', bounded(90_000, async () => {
  const L = layout('pair-ovf-track', { vols: ['one'] })
  // A 32 MiB file the pair shares before the outage.
  const big = Buffer.alloc(32 * MiB)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  fs.writeFileSync(join(L.p.one, 'big'), big)
  let pri, sec, w
  try {
    // No background backing sync in the test's time: the switch to tracking
    // must sync the store itself, and the resyncs, paused at half the limit,
    // must have their acknowledged segments trimmed without it.
    ;({ pri, sec } = await startPair(L, 17151, { pextra: ['--journal-max', '8M', '--on-overflow', 'track'], penv: { REPLFS_BACKING_SYNC_MS: '600000' } }))
    await sec.kill9()
    // 48 chunks of 256 KiB, disjoint, 320 KiB apart: 12 MiB changed, past the limit.
    w = startWriter(join(L.mnt, 'one', 'big'), join(L.base, 'w.log'), 48, 320 * 1024)
    const code = await within(w.done, 30_000, 'blocked')
    assert.equal(code, 0, 'writes past the limit do not wait')
    fs.writeFileSync(join(L.mnt, 'one', 'small'), 'after the overflow')
    fs.renameSync(join(L.mnt, 'one', 'small'), join(L.mnt, 'one', 'small2'))
    // The switch to tracking folds the journal into the dirty set, then drops it.
    await waitFor(async () => { const st = await status(L.pstate); return st.tracking === true && st.journalBytes < 8 * MiB }, 10_000,
      'status showing tracking, the journalled data dropped')
    assert.match(pri.err, /tracking changed extents only/)
    // The journal was the backing store's redo log: what it dropped is on the disk.
    const st = await status(L.pstate)
    assert.ok(st.backingSyncedSeq >= st.journal.nextSeq - 1, `backing store synced through ${st.backingSyncedSeq}, the journal dropped through ${st.journal.nextSeq - 1}`)
    const synced = await fsyncedWhile(pri.proc.pid, join(L.mnt, 'one', 'fsynced'), L.base)
    assert.ok(synced.includes(join(L.p.one, 'fsynced')), `the fsync while tracking reached the backing file: ${JSON.stringify(synced)}`)

    sec = await startSecondary(L, 17151)
    let kind = null
    await waitFor(async () => {
      const s = await status(L.pstate)
      if (s.resync) kind = s.resync.kind
      return s.peerState === 'streaming' && !s.resync && s.lagRecords === 0
    }, 40_000, 'the resync to end', 10)
    await waitSynced(L, 30_000)
    const m = /partial resync of the secondary starts/.test(pri.err)
    assert.ok(m, `a partial resync: ${pri.err}`)
    if (kind !== null) assert.equal(kind, 'partial')
    const sent = Number(/resync sent \((\d+) bytes of data/.exec(pri.err.split('partial resync')[1])?.[1])
    assert.ok(sent >= 12 * MiB && sent <= 12 * MiB + 64 * 1024, `resync sent ${sent} bytes: the 12 MiB tracked`)
    assert.equal((await status(L.pstate)).tracking, false)
    // Once a backing sync after the tracking has put what it tracked on
    // disk, an fsync waits for the journal alone again.
    const again = join(L.mnt, 'one', 'fsynced2')
    await waitFor(async () => !(await fsyncedWhile(pri.proc.pid, again, L.base)).includes(join(L.p.one, 'fsynced2')), 20_000, 'fsyncs to the journal alone')
  } finally {
    w?.proc.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test('overflow track: segments the peer acknowledged go before tracking starts', bounded(80_000, async () => {
  const L = layout('pair-ovf-acked', { vols: ['one'] })
  let pri, sec
  try {
    // The backing sync neither by time nor by growth in the test's time:
    // only the journal's limit lets acknowledged segments go.
    ;({ pri, sec } = await startPair(L, 17152, {
      pextra: ['--journal-max', '8M', '--on-overflow', 'track'],
      penv: { REPLFS_BACKING_SYNC_MS: '600000', REPLFS_BACKING_SYNC_BYTES: String(1 << 30) }
    }))
    const resyncs = resyncsIn(pri.err) // the first pairing's
    // 24 MiB at a pace the secondary keeps up with: three times the limit, acknowledged as it goes.
    const fd = fs.openSync(join(L.mnt, 'one', 'big'), 'w')
    try {
      for (let i = 0; i < 96; i++) {
        fs.writeSync(fd, Buffer.alloc(chunk, i % 256 + 1), 0, chunk, i * chunk)
        await sleep(15)
      }
    } finally {
      fs.closeSync(fd)
    }
    await waitSynced(L, 30_000)
    const st = await status(L.pstate)
    assert.equal(st.tracking, false, 'still journalling')
    assert.not.match(pri.err, /tracking changed extents only/)
    assert.equal(resyncsIn(pri.err), resyncs, `no resync: ${pri.err}`)
    assert.ok(st.journalBytes < 10 * MiB, `the journal trimmed near its limit (24 MiB written): ${st.journalBytes}`)
  } finally {
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test('a limit of two segments: a resync goes on once only the segment being written is left', bounded(60_000, async () => {
  const L = layout('pair-ovf-small', { vols: ['one'] })
  // 6 MiB the initial sync journals, in 1 MiB blocks, into 1 MiB segments
  // (the smallest): it pauses at half the limit, which the one segment
  // being written can hold alone, and nothing else is ever trimmed.
  const data = Buffer.alloc(6 * MiB)
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i)
  fs.writeFileSync(join(L.p.one, 'six'), data)
  let pri, sec
  try {
    ;({ pri, sec } = await startPair(L, 17153, { pextra: ['--journal-max', '2M', '--on-overflow', 'track'], ms: 30_000 }))
  } finally {
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
