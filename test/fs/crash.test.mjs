// timeout: 240
// kill -9 of the mount process in the middle of writes: on restart the
// journal is recovered (a torn tail cut off and reported), no write that
// returned to the application is missing, and a replay of the journal onto
// the initial copy equals the backing store.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { listSegments } from '../../dist/journal/segments.js'

// The writer runs in its own process: after each write returns, it logs the
// block number outside the mount. Several files, overlapping rewrites.
const writer = `
const fs = require('fs')
const [mnt, log] = process.argv.slice(1)
const out = fs.openSync(log, 'a')
const fds = [0, 1, 2].map(i => fs.openSync(mnt + '/f' + i, 'w'))
for (let i = 0; ; i++) {
  const block = Buffer.alloc(65536, i % 251)
  block.writeUInt32BE(i, 0)
  try { fs.writeSync(fds[i % 3], block, 0, block.length, (i % 97) * 65536) } catch (e) { process.exit(0) }
  fs.writeSync(out, i + ' ' + (i % 3) + ' ' + (i % 97) + '\\n')
  if (i % 50 === 0) { try { fs.renameSync(mnt + '/r' + (i - 50), mnt + '/r' + i) } catch { try { fs.writeFileSync(mnt + '/r' + i, String(i)) } catch (e) { process.exit(0) } } }
}`

test('kill -9 mid-write: recovery cuts the torn tail, keeps every returned write, replay matches', bounded(200_000, async () => {
  const base = tempDir('crash')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state'); const copy = join(base, 'copy')
  fs.mkdirSync(src); fs.mkdirSync(mnt); fs.mkdirSync(copy)
  const log = join(base, 'returned.log')
  let d = await mount([src, mnt, '--state', state])
  try {
    const w = spawn(process.execPath, ['-e', writer, mnt, log], { stdio: 'ignore' })
    // Kill once the writer is well under way (not after a fixed time: a
    // loaded machine, or an ASan build, starts it slowly).
    const returnedSoFar = () => { try { return fs.readFileSync(log, 'utf8').split('\n').length - 1 } catch { return 0 } }
    for (const until = Date.now() + 60_000; returnedSoFar() < 200 && Date.now() < until;) await new Promise(r => setTimeout(r, 50))
    await d.kill9()
    unstick(mnt)
    // Its next write fails on the dead mount; should it have started late
    // and opened the bare mountpoint instead, it is stopped here.
    const stop = setTimeout(() => w.kill('SIGKILL'), 5000)
    await new Promise(r => w.exitCode !== null || w.signalCode !== null ? r() : w.on('exit', r))
    clearTimeout(stop)
  } finally {
    unstick(mnt)
  }
  const returned = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map(l => l.split(' ').map(Number))
  assert.ok(returned.length > 20, `the writer got going (${returned.length} writes)`)

  // Damage the tail as a crash mid-append would: half a frame.
  const segs = await listSegments(state)
  const last = segs[segs.length - 1].path
  const sizeBefore = fs.statSync(last).size
  fs.appendFileSync(last, Buffer.from([0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]))

  d = await mount([src, mnt, '--state', state])
  try {
    assert.match(d.err, /torn tail cut/)
    assert.match(d.err, /recovery: \d+ hot parts left by an unclean stop re-journalled/)
    assert.equal(fs.statSync(last).size >= sizeBefore, true)
    // Every write that returned is in the backing file (the last one per
    // slot wins: check those).
    const lastPerSlot = new Map()
    for (const [i, f, slot] of returned) lastPerSlot.set(`${f}/${slot}`, i)
    for (const [key, i] of lastPerSlot) {
      const [f, slot] = key.split('/').map(Number)
      const b = Buffer.alloc(4)
      const fd = fs.openSync(join(mnt, 'f' + f), 'r')
      fs.readSync(fd, b, 0, 4, slot * 65536)
      fs.closeSync(fd)
      assert.ok(b.readUInt32BE(0) >= i, `slot ${key} holds write ${b.readUInt32BE(0)}, at least ${i}`)
    }
    fs.writeFileSync(join(mnt, 'after-restart'), 'new life')
  } finally {
    await d.stop()
    unstick(mnt)
  }
  const j = await Journal.open(state, { group: 'src', readOnly: true })
  assert.equal(j.recovery, null, 'the restarted journal ends clean')
  const rep = await cli(['journal', 'replay', state, '--volume', `src=${copy}`])
  assert.equal(rep.code, 0, rep.err)
  assert.equal(snapshot(copy), snapshot(src))
}))

test.run()
