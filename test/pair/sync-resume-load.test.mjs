// timeout: 150
// Sync mode falls back when the secondary stops answering, and comes back
// while the application goes on writing as fast as it can. It used to wait
// until the secondary had acknowledged everything appended, which never
// came while the writer ran at async speed (RELIABILITY.md). It now resumes
// once the backlog drains soon enough at the secondary's measured pace
// (capture/sync-resume.ts); writers then wait for the secondary again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded, ROOT } from '../helpers/mount.mjs'
import { layout, startPair, waitSynced, waitFor, stopAll, differences, status, sleep } from '../helpers/pair.mjs'

const port = 17324
const IMG = 4 << 20

test('sync mode resumes under a steady writer after a fallback', bounded(140_000, async () => {
  const L = layout('sync-resume-load', { vols: ['one', 'two'], image: { name: 'disk', size: IMG } })
  for (const v of ['one', 'two']) fs.writeFileSync(join(L.p[v], 'ctr'), '0'.padStart(19) + '\n')
  fs.writeFileSync(join(L.p.one, 'acks'), '')
  const ackLog = join(L.base, 'acked'); const stop = join(L.base, 'stop')
  const acked = () => { try { return fs.readFileSync(ackLog, 'utf8').split('\n').filter(Boolean).length } catch { return 0 } }
  let pri, sec, w
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '2'] }))
    w = spawn(process.execPath, [join(ROOT, 'scripts', 'faults', 'workload.cjs'), L.mnt, ackLog, stop, '7', 'disk', String(IMG)], { stdio: 'ignore' })
    await sleep(1000)
    sec.proc.kill('SIGSTOP')
    await waitFor(() => /falling back to async/.test(pri.err), 20_000, 'the fallback')
    await sleep(1500) // the writer at async speed: a backlog builds
    sec.proc.kill('SIGCONT')
    await waitFor(() => /sync mode resumed/.test(pri.err), 60_000, 'sync mode to resume with the writer going on')
    const a = acked()
    await sleep(2000)
    assert.ok(acked() > a, 'the writer went on after the resume')
    const st = await status(L.pstate)
    assert.is(st.syncFallback, false, `still in sync mode: ${pri.err.split('\n').filter(l => /sync mode/.test(l)).join(' | ')}`)
    fs.writeFileSync(stop, '')
    await new Promise(resolve => w.on('exit', resolve))
    w = null
    await waitSynced(L, 60_000)
    assert.is(differences(L), null)
  } finally {
    if (w) { fs.writeFileSync(stop, ''); w.kill('SIGKILL') }
    await stopAll(L, pri, sec)
  }
}))

test.run()
