// timeout: 120
// Sync mode with the peer down never hangs: with --sync-timeout 1 a write
// returns after about a second, the primary falls back to async and says
// so (log, status syncFallback); writes then return at once. When the
// secondary is back and has caught up, sync mode resumes: a write that
// returns is on the secondary again. Same for a stalled (SIGSTOP) peer.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, startSecondary, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

const port = 17140

const timed = fn => { const t0 = Date.now(); fn(); return (Date.now() - t0) / 1000 }

test('sync mode falls back to async when the secondary is down or stalled, and resumes', bounded(100_000, async () => {
  const L = layout('pair-fallback', { vols: ['one'] })
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '1'] }))
    const f = join(L.mnt, 'one', 'f')
    const fd = fs.openSync(f, 'w')
    const put = (i, off = 0) => fs.writeSync(fd, Buffer.from(`write ${i}\n`), 0, 8, off)
    assert.ok(timed(() => put(0)) < 1, 'sync write with the secondary up')
    await waitFor(() => fs.readFileSync(join(L.s.one, 'f'), 'utf8').slice(0, 8) === 'write 0\n', 5000, 'the write on the copy', 20) // in its journal when it returned, applied a moment later

    for (const how of ['kill -9', 'SIGSTOP']) {
      if (how === 'kill -9') await sec.kill9()
      else sec.proc.kill('SIGSTOP')
      const first = timed(() => put(1, 100))
      assert.ok(first >= 0.8 && first < 4, `${how}: the first write returned after ${first} s`)
      const st = await status(L.pstate)
      assert.equal(st.syncFallback, true, `${how}: status says it fell back`)
      let rest = 0
      for (let i = 2; i < 20; i++) rest += timed(() => put(i, 100 * i))
      assert.ok(rest < 2, `${how}: writes after the fallback return at once (${rest} s for 18)`)
      assert.match(pri.err, /falling back to async/)
      if (how === 'kill -9') sec = await startSecondary(L, port)
      else sec.proc.kill('SIGCONT')
      await waitFor(async () => (await status(L.pstate)).syncFallback === false, 30_000, `${how}: sync mode resuming`)
      await waitSynced(L, 30_000)
      assert.match(pri.err, /sync mode resumed/)
      // Sync again: a returned write is in the secondary's journal (sync
      // acknowledges once stored), and on its copy once applied.
      put(99, 5000)
      const [p, s] = [await status(L.pstate), await status(L.sstate)]
      assert.ok(s.storedSeq >= p.lastSeq, `${how}: sync mode holds again after it resumed: the secondary stored ${s.storedSeq}, the write was ${p.lastSeq}`)
      const copied = () => {
        const got = Buffer.alloc(8)
        const sfd = fs.openSync(join(L.s.one, 'f'), 'r')
        try { fs.readSync(sfd, got, 0, 8, 5000) } finally { fs.closeSync(sfd) }
        return got.toString() === 'write 99'
      }
      await waitFor(copied, 5000, `${how}: the write on the copy`, 20)
      put(0, 5000)
    }
    fs.closeSync(fd)
    await waitSynced(L, 30_000)
  } finally {
    sec?.proc.kill('SIGCONT')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
