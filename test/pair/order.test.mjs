// timeout: 150
// Cross-volume order: a writer puts counter N into volume one, then N into
// volume two, then N+1 into one, ... (each a separate write, so a separate
// record). If the secondary applies in sequence order, its copy is a prefix
// of that history at every moment: two <= one <= two + 1. The secondary is
// read live while it applies (two first, then one: two <= one must hold)
// and after each of several kill -9 at random points (both bounds), then
// restarted; in the end the copies are identical.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../fs/workload.mjs'
import { layout, startPair, startSecondary, waitSynced, waitFor, stopAll, differences, sleep } from '../helpers/pair.mjs'

const port = 17110

// Counter writes interleaved with bulk data, so batches are big and many.
const writer = `
const fs = require('fs')
const [mnt, stop] = process.argv.slice(1)
const a = fs.openSync(mnt + '/one/ctr', 'r+'), b = fs.openSync(mnt + '/two/ctr', 'r+')
const bulk = [fs.openSync(mnt + '/one/bulk', 'w'), fs.openSync(mnt + '/two/bulk', 'w')]
const put = (fd, n) => fs.writeSync(fd, Buffer.from(String(n).padStart(19) + '\\n'), 0, 20, 0)
let n = 0
for (; !fs.existsSync(stop); n++) {
  put(a, n)
  if (n % 3 === 0) fs.writeSync(bulk[0], Buffer.alloc(65536, n % 251), 0, 65536, (n % 64) * 65536)
  put(b, n)
  if (n % 3 === 1) fs.writeSync(bulk[1], Buffer.alloc(65536, n % 251), 0, 65536, (n % 64) * 65536)
}
console.log(n - 1)
`

const readCtr = f => { const s = fs.readFileSync(f, 'utf8').trim(); return s === '' ? -1 : Number(s) }

test('batches are applied in order across volumes, through kill -9 of the secondary', bounded(130_000, async () => {
  const L = layout('pair-order', { vols: ['one', 'two'] })
  const A = join(L.s.one, 'ctr'); const B = join(L.s.two, 'ctr')
  const stopFile = join(L.base, 'stop')
  let pri, sec, w
  const r = rng(99)
  let checks = 0
  try {
    ({ pri, sec } = await startPair(L, port))
    fs.writeFileSync(join(L.mnt, 'one', 'ctr'), '0'.padStart(19) + '\n')
    fs.writeFileSync(join(L.mnt, 'two', 'ctr'), '0'.padStart(19) + '\n')
    await waitSynced(L)
    let out = ''
    w = spawn(process.execPath, ['-e', writer, L.mnt, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] })
    w.stdout.on('data', d => { out += d })
    const wDone = new Promise(resolve => w.on('exit', resolve))
    for (let round = 0; round < 6; round++) {
      // Live: the copy while the secondary applies.
      const until = Date.now() + 300 + r() * 900
      while (Date.now() < until) {
        const b = readCtr(B); const a = readCtr(A)
        assert.ok(b <= a, `live: two holds ${b}, beyond one's ${a}`)
        checks++
        await sleep(5)
      }
      await sec.kill9()
      const a = readCtr(A); const b = readCtr(B)
      assert.ok(b <= a && a <= b + 1, `after kill -9 #${round + 1}: one holds ${a}, two holds ${b}`)
      if (round === 5) break
      await sleep(r() * 500) // the primary keeps writing to its journal meanwhile
      sec = await startSecondary(L, port)
      // The restarted copy, before the primary is back in: still a prefix.
      const a2 = readCtr(A); const b2 = readCtr(B)
      assert.ok(b2 <= a2 && a2 <= b2 + 1, `after restart #${round + 1}: one holds ${a2}, two holds ${b2}`)
      await waitFor(async () => readCtr(A) > a + 10, 20_000, 'the restarted secondary applying again')
    }
    sec = await startSecondary(L, port)
    fs.writeFileSync(stopFile, '')
    await wDone
    const last = Number(out.trim())
    assert.ok(last > 200, `the writer got going: ${last}`)
    await waitSynced(L, 60_000)
    assert.equal(readCtr(A), last)
    assert.equal(readCtr(B), last)
    assert.ok(checks > 50, `live checks: ${checks}`)
  } finally {
    fs.writeFileSync(stopFile, '')
    w?.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
