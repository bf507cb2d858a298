// timeout: 180
// Disconnect and resume, and restarts: kill -9 of the secondary during
// writes (the primary keeps serving, journals, reconnects with backoff and
// resumes from the secondary's applied sequence, no new resync); a clean
// restart of the primary (SIGTERM, mount again on the same state); kill -9
// of the primary mid-write, then mount again. After each, the replica ends
// identical to the primary's backing store.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { bounded, unstick, ROOT } from '../helpers/mount.mjs'
import { runWorkload } from '../fs/workload.mjs'
import { layout, startPair, startSecondary, startPrimary, waitSynced, waitFor, stopAll, differences, status, sleep, resyncsIn } from '../helpers/pair.mjs'

const port = 17130
const imageSize = 4 << 20
const workloadUrl = pathToFileURL(join(ROOT, 'test', 'fs', 'workload.mjs')).href

// A writer process: the seeded workload, round after round, until told to stop.
const writerCode = `
import fs from 'node:fs'
import { runWorkload } from '${workloadUrl}'
const [mnt, stop, seed, imageSize] = process.argv.slice(1)
let n = 0
for (let i = 0; !fs.existsSync(stop); i++) n += runWorkload(mnt, ['one', 'two'], { steps: 50, seed: Number(seed) + i, image: 'disk', imageSize: Number(imageSize) }).write ?? 0
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


test('disconnect and resume; restart of the primary; kill -9 of the primary', bounded(160_000, async () => {
  const L = layout('pair-resume', { vols: ['one', 'two'], image: { name: 'disk', size: imageSize } })
  let pri, sec, w
  const logs = []
  try {
    ({ pri, sec } = await startPair(L, port))
    assert.equal(resyncsIn(pri.err), 1, 'the initial sync')

    // 1. kill -9 of the secondary during writes.
    w = startWriter(L, 'stop1', 100)
    await sleep(800)
    await sec.kill9()
    await sleep(1500)
    const down = await status(L.pstate)
    assert.ok(down.peerState !== 'streaming', `peer state with the secondary down: ${down.peerState}`)
    assert.ok(down.lagRecords > 0, 'writes went on into the journal')
    logs.push(sec.err)
    sec = await startSecondary(L, port)
    await waitFor(async () => (await status(L.pstate)).peerState === 'streaming', 20_000, 'the primary reconnecting')
    await sleep(800)
    // 2. SIGSTOP/SIGCONT of the secondary: a stalled peer, then back.
    sec.proc.kill('SIGSTOP')
    await sleep(1500)
    sec.proc.kill('SIGCONT')
    assert.ok((await w.stop()) > 20, 'the writer wrote')
    await waitSynced(L, 60_000)
    assert.equal(differences(L), null, 'after kill -9 of the secondary')
    assert.match(pri.err, /connected to secondary \w+ at [\d.:]+ \(applied [1-9]\d*, consistent\)/)
    assert.equal(resyncsIn(pri.err), 1, 'resumed from the applied sequence, no resync')

    // 3. Clean restart of the primary.
    w = startWriter(L, 'stop2', 200)
    await sleep(800)
    await w.stop()
    const r = await pri.stop()
    assert.equal(r.code, 0, pri.err)
    unstick(L.mnt)
    logs.push(pri.err)
    pri = await startPrimary(L, port)
    runWorkload(L.mnt, ['one', 'two'], { steps: 100, seed: 300, image: 'disk', imageSize })
    await waitSynced(L, 60_000)
    assert.equal(differences(L), null, 'after a restart of the primary')
    assert.equal(resyncsIn(pri.err), 0, 'the restarted primary resumed, no resync')

    // 4. kill -9 of the primary mid-write.
    w = startWriter(L, 'stop3', 400)
    await sleep(1200)
    await pri.kill9()
    // The writer goes before the lazy unmount: after it, its mkdir -p would
    // land in the bare mountpoint directory.
    w.proc.kill('SIGKILL')
    await w.done
    unstick(L.mnt)
    assert.equal(fs.readdirSync(L.mnt).length, 0, 'nothing written beside the mount')
    logs.push(pri.err)
    pri = await startPrimary(L, port)
    runWorkload(L.mnt, ['one', 'two'], { steps: 50, seed: 500, image: 'disk', imageSize })
    await waitSynced(L, 60_000)
    assert.match(pri.err, /recovery: \d+ hot parts left by an unclean stop re-journalled/)
    // The restated hot parts apply on the secondary like any batch: no
    // refused input, no fall back to a full resync.
    assert.equal(resyncsIn(pri.err), 0, pri.err)
    assert.not.match(sec.err, /refusing input/)
  } finally {
    if (w) { w.proc.kill('SIGKILL'); await w.done }
    await stopAll(L, pri, sec)
    if (process.env.PAIR_DEBUG) console.log(logs.join('\n----\n'))
  }
  assert.equal(differences(L), null, 'after kill -9 of the primary')
}))

test.run()
