// timeout: 200
// A real application on the replica: SQLite (WAL, synchronous=FULL) commits numbered
// transactions on the primary of a sync-mode pair (a python3 child process: the test process
// never touches the mount). Several times during the run the secondary is stopped (SIGTERM or
// kill -9, alternately), its backing dir copied, and restarted; each copy must open with
// PRAGMA integrity_check = ok, hold a gap-free prefix of the transactions (rows 1..max, the
// meta row agreeing), and hold every commit that had returned before the stop. In the end,
// every commit that returned is on the secondary and the copy equals the primary.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../../scripts/faults.mjs'
import { writer, checkCopy, lastAck } from './sqlite-env.mjs'
import { layout, startPair, startSecondary, waitSynced, waitAppliedStored, stopAll, differences, sleep } from '../helpers/pair.mjs'

const port = 17540

test('SQLite WAL synchronous=FULL on a sync pair: copies of the secondary are consistent prefixes holding every returned commit', bounded(180_000, async () => {
  const L = layout('faults-sqlite', { vols: ['db'] })
  const acks = join(L.base, 'acked'); const stop = join(L.base, 'stop')
  const r = rng(Number(process.env.FAULT_SEED ?? 7))
  let pri, sec, w
  const seen = []
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '3600'] }))
    let out = ''
    w = spawn('python3', ['-c', writer('WAL'), join(L.mnt, 'db', 't.db'), acks, stop], { stdio: ['ignore', 'pipe', 'inherit'] })
    w.stdout.on('data', d => { out += d })
    const wDone = new Promise(resolve => w.on('exit', resolve))
    for (let round = 0; round < 6; round++) {
      await sleep(800 + r() * 1500)
      const before = lastAck(acks)
      const copy = join(L.base, `copy${round}`)
      if (round % 2) {
        // Killed: a returned commit may be in its journal only. The copy is
        // the one it rebuilds from that journal alone (primary stopped).
        await sec.kill9()
        pri.proc.kill('SIGSTOP')
        try {
          sec = await startSecondary(L, port)
          await waitAppliedStored(L) // its journal alone: the primary is stopped
          sec.proc.kill('SIGSTOP')
          try { fs.cpSync(L.s.db, copy, { recursive: true }) } finally { sec.proc.kill('SIGCONT') }
        } finally { pri.proc.kill('SIGCONT') }
      } else {
        await sec.stop() // a clean stop applies what it stored first
        fs.cpSync(L.s.db, copy, { recursive: true })
        sec = await startSecondary(L, port)
      }
      seen.push(checkCopy(copy, before, `copy ${round} (${round % 2 ? 'kill -9' : 'SIGTERM'})`))
      fs.rmSync(copy, { recursive: true, force: true })
    }
    fs.writeFileSync(stop, '')
    await wDone
    const last = Number(out.trim())
    assert.ok(last > 20, `the writer got going: ${last} commits`)
    assert.ok(seen.some(m => m > 0), `copies held commits: ${seen}`)
    await waitSynced(L, 60_000)
    const final = join(L.base, 'final')
    fs.cpSync(L.s.db, final, { recursive: true })
    assert.is(checkCopy(final, lastAck(acks), 'the converged copy'), last)
    console.log(`sqlite: ${last} commits returned; copies of the secondary held prefixes up to ${seen.join(', ')}; all integrity_check ok, gap-free`)
  } finally {
    fs.writeFileSync(stop, '')
    w?.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
