// timeout: 240
// Verify against a busy writer: a block, an entry or a directory changed
// during the pass is read again at a later sequence on both sides, never
// reported as a divergence. Verify runs back to back while a seeded mixed
// workload (writes, truncates, renames, unlinks, hard links, symlinks,
// chmod, xattrs, trees, image writes) keeps going; every pass must exit 0.
// Then an unclean stop (kill -9) of the primary mid-writes, a restart and
// catch-up: verify clean.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { bounded, cli, unstick, ROOT } from '../helpers/mount.mjs'
import { layout, startPair, startPrimary, stopAll, differences, waitSynced, sleep } from '../helpers/pair.mjs'

const port = 17610
const imageSize = 8 << 20
const busyMs = 75_000 // verify passes back to back for this long
const workloadUrl = pathToFileURL(join(ROOT, 'test', 'fs', 'workload.mjs')).href

const writerCode = `
import fs from 'node:fs'
import { runWorkload } from '${workloadUrl}'
const [mnt, stop, seed, imageSize] = process.argv.slice(1)
let n = 0
for (let i = 0; !fs.existsSync(stop); i++) n += runWorkload(mnt, ['one', 'two'], { steps: 40, seed: Number(seed) + i, image: 'disk', imageSize: Number(imageSize) }).write ?? 0
console.log(n)
`
function startWriter (L, name, seed) {
  const stop = join(L.base, name)
  const p = spawn(process.execPath, ['--input-type=module', '-e', writerCode, L.mnt, stop, String(seed), String(imageSize)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', d => { out += d })
  const done = new Promise(resolve => p.on('exit', () => resolve(Number(out.trim()))))
  return { proc: p, done, stop: () => { fs.writeFileSync(stop, ''); return done } }
}

const verify = (L, ...flags) => cli(['verify', '--state', L.pstate, '--json', ...flags], { timeoutMs: 120_000 })

test('verify during a busy workload: no false mismatch; after kill -9 of the primary and catch-up: clean', bounded(230_000, async () => {
  const L = layout('verify-busy', { vols: ['one', 'two'], image: { name: 'disk', size: imageSize } })
  let pri, sec, w
  try {
    ({ pri, sec } = await startPair(L, port))
    w = startWriter(L, 'stop1', 1000)
    await sleep(1000)
    const until = Date.now() + busyMs
    let passes = 0
    let seqsCovered = 0
    while (Date.now() < until) {
      const r = await verify(L, '--block-size', '4096')
      let rep
      try { rep = JSON.parse(r.out) } catch { rep = null }
      assert.equal(r.code, 0, `pass ${passes + 1} under writes: exit ${r.code}\n${r.out.slice(0, 4000)}\n${r.err}`)
      assert.equal(rep.found.length, 0)
      assert.ok(rep.bytesCompared > 0 && rep.entriesCompared > 0)
      if (rep.toSeq > rep.fromSeq) seqsCovered++
      passes++
    }
    console.log(`verify: ${passes} passes under a busy writer, ${seqsCovered} of them with writes during the pass, no false mismatch`)
    assert.ok(passes >= 3, `only ${passes} passes in ${busyMs} ms`)
    assert.ok(seqsCovered >= 1, 'writes went on during the passes')
    assert.ok((await w.stop()) > 0, 'the writer wrote')
    w = null

    // Unclean stop of the primary mid-writes, restart, catch up: clean.
    w = startWriter(L, 'stop2', 2000)
    await sleep(1500)
    await pri.kill9()
    w.proc.kill('SIGKILL')
    await w.done
    w = null
    unstick(L.mnt)
    pri = await startPrimary(L, port)
    await waitSynced(L, 90_000)
    const r = await verify(L)
    assert.equal(r.code, 0, `after kill -9 and catch-up: ${r.out.slice(0, 4000)}\n${r.err}`)
    assert.equal(JSON.parse(r.out).found.length, 0)
    assert.equal(differences(L), null)
  } finally {
    if (w) { w.proc.kill('SIGKILL'); await w.done }
    await stopAll(L, pri, sec)
  }
}))

test.run()
