// Probe: does sync mode really resume after a fallback? A sync pair (--sync-timeout 2), the
// campaign's workload; the secondary is SIGSTOPped past the timeout (fallback), continued;
// with the writer paused until the primary logs "sync mode resumed", every write acked afterwards must already be
// on the secondary (checked with the secondary stopped), and the lag stays near zero.
import fs from 'node:fs'
import { join, dirname } from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { layout, startPair, stopAll, status, sleep, waitFor } from '../../test/helpers/pair.mjs'

const port = Number(process.env.FAULT_PORT ?? 17590)
const IMG = 4 << 20
const rec = i => Buffer.from(`ack ${String(i).padStart(27)}\n`)
const L = layout('faults-resume', { vols: ['one', 'two'], image: { name: 'disk', size: IMG } })
for (const v of ['one', 'two']) fs.writeFileSync(join(L.p[v], 'ctr'), '0'.padStart(19) + '\n')
fs.writeFileSync(join(L.p.one, 'acks'), '')
const ackLog = join(L.base, 'acked'); const stop = join(L.base, 'stop')
const acked = () => { try { return fs.readFileSync(ackLog, 'utf8').split('\n').filter(Boolean).map(Number) } catch { return [] } }
const onSecondary = i => { const b = Buffer.alloc(32); const f = fs.openSync(L.s.disk, 'r'); fs.readSync(f, b, 0, 32, i * 32); fs.closeSync(f); return b.equals(rec(i)) }
let pri, sec, w
const out = { }
try {
  ({ pri, sec } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '2'] }))
  w = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'workload.cjs'), L.mnt, ackLog, stop, '1', 'disk', String(IMG)], { stdio: 'ignore' })
  const rate = async what => { const a = acked().length; const lag = []; for (let i = 0; i < 6; i++) { await sleep(500); lag.push((await status(L.pstate)).lagRecords) } out[what] = { perSec: (acked().length - a) / 3, lagRecords: lag } }
  await rate('before fallback')
  sec.proc.kill('SIGSTOP'); await sleep(4000); sec.proc.kill('SIGCONT')
  await rate('fallen back')
  // A writer faster than the apply keeps the secondary behind: pause it until sync resumes.
  w.kill('SIGSTOP')
  await waitFor(() => /sync mode resumed/.test(pri.err), 60_000, 'sync mode resumed')
  w.kill('SIGCONT')
  await sleep(500)
  await rate('after resume')
  const p = await status(L.pstate); out.status = { mode: p.mode, syncFallback: p.syncFallback }
  const ids = acked()
  sec.proc.kill('SIGSTOP')
  const missing = ids.filter(i => !onSecondary(i))
  sec.proc.kill('SIGCONT')
  out.ackedAfterResume = ids.length; out.missingOnSecondary = missing.length; out.firstMissing = missing.slice(0, 5)
  out.log = pri.err.split('\n').filter(l => /sync mode/.test(l))
} finally {
  fs.writeFileSync(stop, ''); w?.kill('SIGKILL')
  await stopAll(L, pri, sec)
}
console.log(JSON.stringify(out, null, 1))
process.exit(out.missingOnSecondary ? 1 : 0)
