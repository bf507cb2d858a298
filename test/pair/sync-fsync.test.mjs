// timeout: 120
// Sync mode: an fsync waits for the secondary to hold every write before
// it, not for its own record. The fsync record carries no data, so once the
// writes before it are in the secondary's journal on its disk, an fsync
// needs the local journal only (one round trip less per transaction). The
// secondary is stopped (SIGSTOP) to tell the two apart:
//   - writes all acknowledged: an fsync returns while the secondary is stopped;
//   - a write of another process still waiting for its acknowledgement: an
//     fsync of another file waits with it (journal order is one order), and both return once the secondary runs again.
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

test('sync mode: an fsync waits for the writes before it, not for its own record', bounded(100_000, async () => {
  const L = layout('pair-syncfsync', { vols: ['one'] })
  let pri, sec
  const kids = []
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '60'] }))
    const f = join(L.mnt, 'one', 'f')
    const g = join(L.mnt, 'one', 'g')
    fs.writeFileSync(f, Buffer.alloc(8192, 1)) // returned: on the secondary's disk
    fs.writeFileSync(g, 'g')
    const before = (await status(L.pstate)).lastSeq

    sec.proc.kill('SIGSTOP')
    let stopped = true
    try {
      // Every write before it is acknowledged: the fsync needs the local journal only.
      const alone = fsyncOf(f)
      kids.push(alone.proc)
      const r = await within(alone.done, 20_000, 'still waiting')
      assert.equal(r, { code: 0, err: '' }, 'an fsync after acknowledged writes returns with the secondary stopped')

      // A write of another process waits for its acknowledgement; an fsync
      // after it (its record appended) waits with it. Of another file: the
      // kernel holds f's inode lock through the write, which an fsync of f
      // would wait for before it reached the daemon.
      const w = writeTo(f, 4096, 2)
      kids.push(w.proc)
      await waitFor(async () => (await status(L.pstate)).lastSeq > before + 1, 10_000, 'the waiting write in the journal')
      const after = fsyncOf(g)
      kids.push(after.proc)
      await waitFor(async () => (await status(L.pstate)).lastSeq > before + 2, 10_000, 'the second fsync in the journal')
      await sleep(500)
      assert.is(await within(after.done, 0, 'waiting'), 'waiting', 'the fsync waits for the write before it')
      assert.is(await within(w.done, 0, 'waiting'), 'waiting', 'the write waits for the stopped secondary')

      sec.proc.kill('SIGCONT')
      stopped = false
      assert.equal(await within(w.done, 20_000, 'still waiting'), { code: 0, err: '' })
      assert.equal(await within(after.done, 20_000, 'still waiting'), { code: 0, err: '' })
    } finally {
      if (stopped) sec.proc.kill('SIGCONT')
    }
    await waitAppliedStored(L)
    const copy = fs.readFileSync(join(L.s.one, 'f'))
    assert.ok(copy.subarray(4096, 8192).equals(Buffer.alloc(4096, 2)), 'the write is on the copy')
    assert.not.ok((await status(L.pstate)).syncFallback, 'no fallback to async')
  } finally {
    for (const k of kids) k.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
}))

test.run()
