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
import { spawn, execFileSync } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../../scripts/faults.mjs'
import { layout, startPair, waitSynced, stopAll, differences, sleep } from '../helpers/pair.mjs'

const port = 18010

const writer = `
import sqlite3, sys, os
db, acks, stop = sys.argv[1:4]
c = sqlite3.connect(db, isolation_level=None)
c.execute('PRAGMA journal_mode=DELETE'); c.execute('PRAGMA synchronous=FULL')
c.execute('CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, pad BLOB)')
c.execute('CREATE TABLE IF NOT EXISTS meta (k INTEGER PRIMARY KEY, last INTEGER)')
c.execute('INSERT OR IGNORE INTO meta VALUES (1, 0)')
a = open(acks, 'a')
n = 0
while not os.path.exists(stop):
    n += 1
    c.execute('BEGIN')
    c.execute('INSERT INTO t VALUES (?, randomblob(?))', (n, 100 + (n * 7919) % 3000))
    c.execute('UPDATE meta SET last = ? WHERE k = 1', (n,))
    c.execute('COMMIT')
    a.write('%d\\n' % n); a.flush()
print(n)
`

const checker = `
import sqlite3, sys, json
c = sqlite3.connect(sys.argv[1])
ic = c.execute('PRAGMA integrity_check').fetchall()
try:
    cnt, lo, hi = c.execute('SELECT count(*), min(n), max(n) FROM t').fetchone()
    last = c.execute('SELECT last FROM meta WHERE k = 1').fetchone()[0]
except sqlite3.OperationalError as e:
    cnt, lo, hi, last = 0, None, None, None
print(json.dumps({'ic': [r[0] for r in ic], 'count': cnt, 'min': lo, 'max': hi, 'last': last}))
`

const lastAck = f => { try { const l = fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean); return l.length ? Number(l[l.length - 1]) : 0 } catch { return 0 } }

function checkCopy (dir, mustHave, what) {
  const r = JSON.parse(execFileSync('python3', ['-c', checker, join(dir, 't.db')], { encoding: 'utf8' }))
  assert.equal(r.ic, ['ok'], `${what}: integrity_check`)
  if (r.count > 0) {
    assert.is(r.min, 1, `${what}: rows start at 1`)
    assert.is(r.count, r.max, `${what}: gap-free (${r.count} rows, max ${r.max})`)
    assert.is(r.last, r.max, `${what}: meta agrees with the rows`)
  }
  assert.ok((r.max ?? 0) >= mustHave, `${what}: commits that returned: up to ${mustHave}, copy holds up to ${r.max}`)
  return r.max ?? 0
}

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
    w = spawn('python3', ['-c', writer, join(L.mnt, 'db', 't.db'), acks, stop], { stdio: ['ignore', 'pipe', 'inherit'] })
    w.stdout.on('data', d => { out += d })
    const wDone = new Promise(resolve => w.on('exit', resolve))
    for (let round = 0; round < 6; round++) {
      await sleep(800 + r() * 1500)
      const before = lastAck(acks)
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
