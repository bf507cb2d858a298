// timeout: 120
// Sync mode: a write returns once the secondary's journal file holds it (as
// a local write returns once in the page cache); an fsync once the
// secondary's disk holds everything through it. The secondary is stopped
// (SIGSTOP) to tell them apart:
//   - a returned write is in the secondary's journal (its status says so);
//   - an fsync after acknowledged writes still waits for the secondary (its
//     own record is what makes the secondary sync), and once it returns the
//     secondary's journal is on its disk through that record;
//   - a write of another process still waiting for its acknowledgement: an
//     fsync of another file waits with it (journal order is one order), and
//     both return once the secondary runs again.
// The blocking calls run in child processes: the test's own event loop
// keeps polling.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, status, waitFor, waitAppliedStored, within, sleep } from '../helpers/pair.mjs'

const port = 17125

/** A child process doing one blocking call on the mount; `done` resolves with its exit code. */
function child (code) {
  const p = spawn(process.execPath, ['-e', `const fs = require('fs'); ${code}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  p.stderr.on('data', d => { err += d })
  const done = new Promise(resolve => p.on('exit', c => resolve({ code: c, err })))
  return { proc: p, done }
}
const fsyncOf = file => child(`const fd = fs.openSync(${JSON.stringify(file)}, 'r+'); fs.fsyncSync(fd); fs.closeSync(fd)`)
const writeTo = (file, off, byte) => child(`const fd = fs.openSync(${JSON.stringify(file)}, 'r+'); fs.writeSync(fd, Buffer.alloc(4096, ${byte}), 0, 4096, ${off}); fs.closeSync(fd)`)

test('sync mode: a write returns once in the secondary\'s journal, an fsync once on its disk', bounded(100_000, async () => {
  const L = layout('pair-syncfsync', { vols: ['one'] })
  let pri, sec
  const kids = []
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '60'] }))
    const f = join(L.mnt, 'one', 'f')
    const g = join(L.mnt, 'one', 'g')
    const h = join(L.mnt, 'one', 'h')
    fs.writeFileSync(f, Buffer.alloc(8192, 1))
    fs.writeFileSync(g, Buffer.alloc(8192, 1))
    fs.writeFileSync(h, 'h')
    const before = (await status(L.pstate)).lastSeq
    assert.ok((await status(L.sstate)).storedSeq >= before, 'returned writes are in the secondary\'s journal')

    sec.proc.kill('SIGSTOP')
    let stopped = true
    try {
      // Every write before it is acknowledged; the fsync still waits for the
      // secondary's disk.
      const alone = fsyncOf(f)
      kids.push(alone.proc)
      await waitFor(async () => (await status(L.pstate)).lastSeq > before, 10_000, 'the fsync in the journal')
      const fsyncSeq = (await status(L.pstate)).lastSeq
      await sleep(500)
      assert.is(await within(alone.done, 0, 'waiting'), 'waiting', 'the fsync waits for the stopped secondary')

      // A write of another process waits for its acknowledgement; an fsync
      // after it (its record appended) waits with it. Each of another file:
      // the kernel holds a file's inode lock through a write or an fsync,
      // which the next call on that file would wait for before it reached
      // the daemon.
      const w = writeTo(g, 4096, 2)
      kids.push(w.proc)
      await waitFor(async () => (await status(L.pstate)).lastSeq > fsyncSeq, 10_000, 'the waiting write in the journal')
      const after = fsyncOf(h)
      kids.push(after.proc)
      await waitFor(async () => (await status(L.pstate)).lastSeq > fsyncSeq + 1, 10_000, 'the second fsync in the journal')
      const lastFsync = (await status(L.pstate)).lastSeq
      await sleep(500)
      assert.is(await within(after.done, 0, 'waiting'), 'waiting', 'the fsync waits for the write before it')
      assert.is(await within(w.done, 0, 'waiting'), 'waiting', 'the write waits for the stopped secondary')

      sec.proc.kill('SIGCONT')
      stopped = false
      assert.equal(await within(alone.done, 20_000, 'still waiting'), { code: 0, err: '' })
      assert.equal(await within(w.done, 20_000, 'still waiting'), { code: 0, err: '' })
      assert.equal(await within(after.done, 20_000, 'still waiting'), { code: 0, err: '' })
      const s = await status(L.sstate)
      assert.ok(s.durableSeq >= lastFsync, `the secondary's journal is on its disk through the last fsync (${s.durableSeq} of ${lastFsync})`)
    } finally {
      if (stopped) sec.proc.kill('SIGCONT')
    }
    await waitAppliedStored(L)
    const copy = fs.readFileSync(join(L.s.one, 'g'))
    assert.ok(copy.subarray(4096, 8192).equals(Buffer.alloc(4096, 2)), 'the write is on the copy')
    assert.not.ok((await status(L.pstate)).syncFallback, 'no fallback to async')
  } finally {
    for (const k of kids) k.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
}))

test.run()
