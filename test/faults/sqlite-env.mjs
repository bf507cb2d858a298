// The SQLite application of the fault tests (sqlite.test.mjs: WAL;
// sqlite-rollback.test.mjs: rollback journal): a python3 writer committing
// numbered transactions and logging each one that returned, and the check of
// a copy of the database directory.
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import * as assert from 'uvu/assert'

/** python3 -c source; argv: db, acks file, stop file. Prints the commits made. */
export const writer = journalMode => `
import sqlite3, sys, os
db, acks, stop = sys.argv[1:4]
c = sqlite3.connect(db, isolation_level=None)
c.execute('PRAGMA journal_mode=${journalMode}'); c.execute('PRAGMA synchronous=FULL')
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

/** The last commit the writer saw return. */
export const lastAck = f => { try { const l = fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean); return l.length ? Number(l[l.length - 1]) : 0 } catch { return 0 } }

/** Asserts the copy in `dir` is intact, a gap-free prefix, holding commits 1..mustHave; returns its last commit. */
export function checkCopy (dir, mustHave, what) {
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
