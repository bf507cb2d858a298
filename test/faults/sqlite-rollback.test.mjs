// timeout: 120
// SQLite in rollback-journal mode (journal_mode=DELETE, synchronous=FULL) on the primary of a
// sync-mode pair, as test/faults/sqlite.test.mjs does for WAL: numbered transactions from a
// python3 child process. Six times during the run the secondary is paused (SIGSTOP; the link
// stays up), its copy (the database and any hot `-journal` beside it) taken, then let go
// (SIGCONT). Each copy must open with PRAGMA integrity_check = ok (SQLite rolls a hot journal
// back as after a crash), hold a gap-free prefix of the transactions (the meta row agreeing)
// and every commit that had returned before the pause. In the end every commit that returned
// is on the secondary and the copy equals the primary.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../../scripts/faults.mjs'
import { writer, checkCopy, lastAck } from './sqlite-env.mjs'
import { layout, startPair, waitSynced, waitAppliedStored, stopAll, differences, sleep } from '../helpers/pair.mjs'

const port = 18010

test('SQLite journal_mode=DELETE synchronous=FULL on a sync pair: copies of the paused secondary are consistent prefixes holding every returned commit', bounded(100_000, async () => {
  const L = layout('faults-sqlite-rollback', { vols: ['db'] })
  const acks = join(L.base, 'acked'); const stop = join(L.base, 'stop')
  const r = rng(Number(process.env.FAULT_SEED ?? 7))
  let pri, sec, w
  const seen = []
  let hotCopies = 0
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '3600'] }))
    let out = ''
    w = spawn('python3', ['-c', writer('DELETE'), join(L.mnt, 'db', 't.db'), acks, stop], { stdio: ['ignore', 'pipe', 'inherit'] })
    w.stdout.on('data', d => { out += d })
    const wDone = new Promise(resolve => w.on('exit', resolve))
    for (let round = 0; round < 6; round++) {
      await sleep(800 + r() * 1500)
      const before = lastAck(acks)
      // Those returned once in the secondary's journal: on its copy once it applied what it stored.
      await waitAppliedStored(L)
      const copy = join(L.base, `copy${round}`)
      sec.proc.kill('SIGSTOP')
      try { fs.cpSync(L.s.db, copy, { recursive: true }) } finally { sec.proc.kill('SIGCONT') }
      const hot = fs.existsSync(join(copy, 't.db-journal'))
      if (hot) hotCopies++
      seen.push(checkCopy(copy, before, `copy ${round}${hot ? ' (a hot journal beside it)' : ''}`))
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
    console.log(`sqlite rollback journal: ${last} commits returned; copies of the paused secondary held prefixes up to ${seen.join(', ')} (${hotCopies} with a hot journal); all integrity_check ok, gap-free`)
  } finally {
    fs.writeFileSync(stop, '')
    w?.kill('SIGKILL')
    try { sec?.proc.kill('SIGCONT') } catch {}
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
