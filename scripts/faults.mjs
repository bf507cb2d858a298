#!/usr/bin/env node
// `make faults`: a seeded, reproducible fault campaign against a replicating pair.
//   FAULT_SEED=S     the campaign's seed (printed; the same seed gives the same workload
//                    choices and the same faults at the same points of the schedule)
//   FAULT_RUNS=N     number of runs (default 6; SOAK=1: 100)
//   FAULT_RUN_MS=MS  faulted time per run (default 15000; SOAK=1: 60000)
//   FAULT_ONLY=K     only run K of the seed's campaign (to reproduce one failing run)
//   FAULT_KINDS=a,b  only these fault kinds (or none), same schedule; the damage kinds are
//                    flip-, cpflip-, truncate-, delete- + primary|secondary; throttle is the
//                    bandwidth limit (tc tbf), drawn in the delay slot
//   FAULT_PORT=P     first of 40 ports (17500-17599 or 18000-18199; default 17550)
//   FAULT_NETNS=0    the secondary on loopback, not in a network namespace (no throttle)
//   FAULT_SEGMENT=SIZE the secondary's --segment-size (say 64K: its trims run all the time)
//   FAULT_TRACK=SIZE the primary's --journal-max, with --on-overflow track (say 8M: outages
//                    overflow it, the capture tracks, and the peer's return resyncs)
// Each run: a secondary (`serve`) in a network namespace of the campaign's own, reached over a
// veth pair (scripts/faults/netns.mjs; made at the start, removed at the end or on a signal;
// without root, iproute2 or nsenter it says so and runs it on loopback), behind a TCP proxy on
// the host (scripts/faults/proxy.mjs), and a primary mount (`--mode sync` with
// --sync-timeout 3600 or 2, every third run `async`) over 2 directory volumes and 1 image
// volume; an application (scripts/faults/workload.cjs) writes; faults are injected at seeded
// random points (kill -9 of either daemon, then restart; connection cut/reset/stall/delay
// through the proxy; the link's bandwidth limited both ways by `tc tbf` on the veth for a
// while (this kernel has no netem: delay and loss come from the proxy, bandwidth from tbf);
// SIGSTOP/SIGCONT of either side; damage to either side's state while that daemon
// is down: a bit flipped in a journal segment or in the checkpoint, a segment truncated or
// deleted; ENOSPC, for a while, on each of the four places: the primary's backing store
// and state directory, the secondary's copy and state directory, each a small filesystem of
// its own (scripts/faults/places.mjs)). Checked (Jepsen's properties, not only "equal at
// the end"):
//  1. acknowledged writes: in sync mode (no fallback) every write+fsync that returned is on
//     the secondary at every snapshot; in both modes it is there once converged;
//  2. prefix: at every snapshot of the secondary (proxy blocked, the copy quiet and reporting
//     consistent; and after each kill -9 + restart of the secondary, before the primary is let
//     back in) the dependent writes one/ctr=i then two/ctr=i hold two <= one <= two + 1, and
//     the acked records (image i, then one/acks i, then image i+1) are gap-free prefixes
//     1..m with the image at most one ahead (across an image and a directory volume);
//  3. convergence: once the faults stop, the pair is in sync within a bound and the primary's
//     backing store equals the copy (differences()); the worst time is reported;
//  4. damage: any damage the daemons name is counted and shown; a run whose injected damage
//     no daemon named (log or status) fails.
import fs from 'node:fs'
import { join, dirname } from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { unstick } from '../test/helpers/mount.mjs'
import { layout, startSecondary, startPrimary, waitSynced, waitFor, stopAll, differences, status, sleep, within } from '../test/helpers/pair.mjs'
import { Proxy } from './faults/proxy.mjs'
import { openLink } from './faults/netns.mjs'
import { PLACES, smallFilesystems, flipJournalBit, flipCheckpointBit, cutSegment, harmless } from './faults/places.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const WORKLOAD = join(HERE, 'faults', 'workload.cjs')
const IMG = 4 << 20
export const FAULTS = ['kill9-primary', 'kill9-secondary', 'stop-primary', 'stop-secondary', 'cut', 'reset', 'stall', 'delay',
  'flip-primary', 'flip-secondary', ...PLACES.map(p => `enospc-${p}`)]

// Kinds added after a slot of the schedule share it, so that the seeds recorded before keep
// their schedules: the schedule draws the slot's kind (in FAULTS); one more draw picks among
// the slot's kinds that are enabled, made only when more than one is (so the CI profile's
// schedule, and FAULT_KINDS=flip-primary's or =delay's, stay as they were).
//  - damage to a stopped side's state: a bit flipped in a journal segment or in the
//    checkpoint, a segment truncated at a random byte or deleted (slot `flip-SIDE`);
//  - the link's shaping: the proxy's delay, or `throttle`, a bandwidth limit (`tc tbf`) on
//    the veth, enabled only when the secondary runs in the namespace (slot `delay`).
const DAMAGE = ['flip', 'cpflip', 'truncate', 'delete']
const SLOTS = {
  'flip-primary': DAMAGE.map(d => `${d}-primary`),
  'flip-secondary': DAMAGE.map(d => `${d}-secondary`),
  delay: ['delay', 'throttle']
}
export const KINDS = [...FAULTS, ...['cpflip', 'truncate', 'delete'].flatMap(d => [`${d}-primary`, `${d}-secondary`]), 'throttle']

/** Damages a stopped side's state directory; what was done, or null. */
async function damageState (dir, what, r) {
  switch (what) {
    case 'flip': return flipJournalBit(dir, r)
    case 'cpflip': return flipCheckpointBit(dir, r)
    default: return cutSegment(dir, r, what)
  }
}

export function rng (seed) {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}
// FAULT_KINDS=cut,reset (or none): only these kinds are injected; the schedule stays the seed's.
const overflowArgs = process.env.FAULT_TRACK ? ['--journal-max', process.env.FAULT_TRACK, '--on-overflow', 'track'] : []
const envKinds = process.env.FAULT_KINDS ? process.env.FAULT_KINDS.split(',') : null
const runSeed = (seed, k) => (Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(k + 1, 40503)) >>> 0

const rec = i => Buffer.from(`ack ${String(i).padStart(27)}\n`)
const readCtr = f => { try { const s = fs.readFileSync(f, 'utf8').trim(); return s === '' ? -1 : Number(s) } catch { return -1 } }
const readAcks = f => { try { return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number) } catch { return [] } }
/** The acked ids missing from the copy (image and one/acks). */
function missingAcks (L, ids, side = 's') {
  const out = []
  const fi = fs.openSync(L[side].disk, 'r'); let fa = null
  try { fa = fs.openSync(join(L[side].one, 'acks'), 'r') } catch {}
  const buf = Buffer.alloc(32); const want = i => rec(i)
  try {
    for (const i of ids) {
      let ok = fs.readSync(fi, buf, 0, 32, i * 32) === 32 && buf.equals(want(i))
      ok = ok && fa !== null && fs.readSync(fa, buf, 0, 32, i * 32) === 32 && buf.equals(want(i))
      if (!ok) out.push(i)
    }
  } finally { fs.closeSync(fi); if (fa !== null) fs.closeSync(fa) }
  return out
}

/** The acked records on a side, as a prefix: the highest id m with 1..m all present, and
 *  any id present beyond a gap (a torn history: record i+1 is only written after i returned). */
function ackPrefix (file) {
  let buf
  try { buf = fs.readFileSync(file) } catch { return { m: 0, beyond: [] } }
  const n = Math.floor(Math.min(buf.length, IMG / 2) / 32)
  let m = 0; const beyond = []
  for (let i = 1; i < n; i++) {
    const ok = buf.subarray(i * 32, i * 32 + 32).equals(rec(i))
    if (ok && m === i - 1) m = i
    else if (ok) beyond.push(i)
  }
  return { m, beyond }
}

const firstLines = (text, n) => {
  const lines = text.split('\n')
  return lines.length > n ? [...lines.slice(0, n), `(${lines.length - n} more lines)`].join('\n') : text
}
/** A log's last `n` lines, indented and cut at 300 characters each. */
const lastLines = (log, n) => log.trim().split('\n').slice(-n).map(l => `    | ${l.slice(0, 300)}`).join('\n')
/** A daemon's end, for a failure: running or how it exited, and its last log lines. */
const ending = (side, d, log) => {
  const state = !d ? 'not started' : d.exited ? `exited (code ${d.exited.code}, signal ${d.exited.signal})` : `running (pid ${d.proc.pid})`
  return `  the ${side}: ${state}; its last lines:\n${lastLines(log, 8)}`
}

export function newTotals () {
  return {
    runs: 0, faults: Object.fromEntries(KINDS.map(f => [f, 0])), snapshots: 0, snapshotsSkipped: 0,
    acked: 0, ackedLost: 0, tornSnapshots: 0, divergences: 0, silentDivergences: 0, hangs: 0,
    fallbacks: 0, excludedAfterFallback: 0, damage: [], flips: [], silentDamage: 0, unsteadyReads: 0, worstConvergeMs: 0, failures: [],
    link: 'loopback', throttleKbit: []
  }
}

async function oneRun (k, seed, mode, syncTimeout, runMs, ports, kinds, link, T, log) {
  const r = rng(seed)
  const L = layout(`faults-${k}`, { vols: ['one', 'two'], image: { name: 'disk', size: IMG } })
  // Each place on a small filesystem of its own only when it is to be filled up (a tmpfs
  // backing store also makes the application faster than the secondary's disk).
  const disks = !kinds || kinds.some(k => k.startsWith('enospc-')) ? smallFilesystems(L) : { keep () {}, close () {} }
  for (const v of ['one', 'two']) fs.writeFileSync(join(L.p[v], 'ctr'), '0'.padStart(19) + '\n')
  fs.writeFileSync(join(L.p.one, 'acks'), '')
  const ackLog = join(L.base, 'acked'); const stopFile = join(L.base, 'stop')
  const fail = what => { T.failures.push({ run: k, seed, mode, what }); log(`  FAIL run ${k} (seed ${seed}, ${mode}): ${what}`) }
  // The secondary listens in the namespace; the proxy, on the host, reaches it over the veth.
  const secAt = link ? { host: link.nsAddr, netns: link.name } : {}
  const proxy = new Proxy(ports.proxy, ports.sec, secAt.host)
  const pextra = [...(mode === 'sync' ? ['--sync-timeout', String(syncTimeout)] : []), ...overflowArgs]
  let oldPriErr = '' // the logs of primaries killed in this run
  let oldSecErr = '' // and of secondaries
  const runDamage = [] // damage injected in this run: each must be reported, never silent
  const pending = [] // acked writes missing at a snapshot: lost unless sync fell back in this run
  let pri, sec, w, wOut = ''
  let wExit = Promise.resolve()
  const runFaults = {}
  const startP = async () => {
    for (let t = 0; ; t++) {
      try { return await startPrimary(L, ports.proxy, { mode, extra: pextra }) } catch (err) {
        if (t >= 2) throw new Error(`the primary does not restart: ${err.message.slice(0, 400)}`)
        unstick(L.mnt); await sleep(500)
      }
    }
  }
  const startS = async () => {
    let s
    const segment = process.env.FAULT_SEGMENT ? ['--segment-size', process.env.FAULT_SEGMENT] : []
    try { s = await startSecondary(L, ports.sec, segment, secAt) } catch (err) {
      throw new Error(`the secondary does not start: ${err.message.slice(0, 400)}`)
    }
    // kill -9 and SIGSTOP go to this pid: it must be the daemon itself, in the namespace.
    if (link && !(link.holds(s.proc.pid) && fs.readlinkSync(`/proc/${s.proc.pid}/exe`) === fs.realpathSync(process.execPath))) {
      await s.kill9(); throw new Error(`the secondary's pid ${s.proc.pid} is not the daemon in ${link.name}`)
    }
    return s
  }
  // The copy, quiet and consistent: prefix and (sync) acknowledged writes.
  const checkCopy = async (acked, when, f0) => {
    let st = null
    try {
      st = await waitFor(async () => {
        const a = await status(L.sstate); await sleep(250); const b = await status(L.sstate)
        return a.appliedSeq === b.appliedSeq && b.appliedSeq === a.appliedSeq && b
      }, 8000, 'the secondary quiet')
    } catch {}
    if (!st || !st.consistent || st.applyError) { T.snapshotsSkipped++; return } // a resync in progress: not a crash-consistent copy yet
    // Read while nothing applies: a secondary still replaying its journal after a restart
    // (no connection needed) can pause longer than the quiet test on an fsync, and files read
    // one after the other while it goes on are no snapshot at all (seen: a false torn
    // prefix). So the copy is read twice, 100 ms apart, between two statuses; the reads must
    // agree and the applied sequence must not move.
    const readCopy = () => ({
      a: readCtr(join(L.s.one, 'ctr')), b: readCtr(join(L.s.two, 'ctr')),
      img: ackPrefix(L.s.disk), fa: ackPrefix(join(L.s.one, 'acks'))
    })
    let view = null
    for (let t = 0; t < 20 && !view; t++) {
      const s1 = await status(L.sstate).catch(() => null); const v1 = readCopy()
      await sleep(100)
      const v2 = readCopy(); const s2 = await status(L.sstate).catch(() => null)
      if (s1 && s2 && s1.appliedSeq === s2.appliedSeq && s2.consistent && JSON.stringify(v1) === JSON.stringify(v2)) view = v1
      else { T.unsteadyReads++; await sleep(250) }
    }
    if (!view) { T.snapshotsSkipped++; return }
    T.snapshots++
    const { a, b, img, fa } = view
    if (!(b <= a && a <= b + 1)) { T.tornSnapshots++; fail(`${when}: not a prefix: one/ctr ${a}, two/ctr ${b}`) }
    // The acked records: record i goes to the image, then to one/acks, then i+1 to the image.
    if (img.beyond.length || fa.beyond.length || !(fa.m <= img.m && img.m <= fa.m + 1)) {
      T.tornSnapshots++
      fail(`${when}: acked records not a prefix: image 1..${img.m} (+${img.beyond.slice(0, 5)}), one/acks 1..${fa.m} (+${fa.beyond.slice(0, 5)})`)
    }
    if (mode === 'sync') {
      const lost = missingAcks(L, acked)
      const what = `${when}: ${lost.length} acknowledged writes not on the secondary (first ${lost.slice(0, 5)}; ${acked.length} acked)`
      if (lost.length) {
        // Sync was on (every fallback resumed) before the acks were read, and no fallback
        // was noticed since: a loss. Otherwise decided at the end of the run.
        await sleep(1000)
        if (f0.f === f0.r && fallbacks() === f0.f) { T.ackedLost += lost.length; fail(what) } else pending.push({ n: lost.length, what })
      }
    }
  }
  // The primary logs each fallback ("sync mode: no acknowledgement ... in time") and each
  // resume ("sync mode resumed"); it notices a fallback on its next poll of the core.
  const priLog = () => oldPriErr + (pri?.err ?? '')
  const fallbacks = () => (priLog().match(/sync mode: no acknowledgement|falling back to async/g) ?? []).length
  const resumes = () => (priLog().match(/sync mode resumed/g) ?? []).length
  const fellBack = () => fallbacks() > 0
  const syncState = () => ({ f: fallbacks(), r: resumes() })
  const snapshot = async () => {
    const f0 = syncState(); const acked = readAcks(ackLog)
    proxy.block()
    try { await checkCopy(acked, 'snapshot', f0) } finally { proxy.unblock() }
  }
  try {
    await proxy.start()
    sec = await startS()
    pri = await startP()
    await waitSynced(L, 60_000)
    w = spawn(process.execPath, [WORKLOAD, L.mnt, ackLog, stopFile, String(seed), 'disk', String(IMG)], { stdio: ['ignore', 'pipe', 'pipe'] })
    w.stdout.on('data', d => { wOut += d }); w.stderr.on('data', d => { wOut += d })
    wExit = new Promise(resolve => w.on('exit', resolve))
    const t0 = Date.now()
    while (Date.now() - t0 < runMs) {
      await sleep(200 + r() * 1500)
      let kind = FAULTS[Math.floor(r() * FAULTS.length)]
      const hold = 300 + r() * 2700
      if (SLOTS[kind]) {
        const enabled = SLOTS[kind].filter(d => (!kinds || kinds.includes(d)) && (d !== 'throttle' || link))
        if (enabled.length > 1) kind = enabled[Math.floor(r() * enabled.length)]
        else if (enabled.length === 1) kind = enabled[0]
      }
      if (kinds && !kinds.includes(kind)) { await sleep(hold); continue }
      T.faults[kind]++; runFaults[kind] = (runFaults[kind] ?? 0) + 1
      switch (kind) {
        case 'kill9-primary':
          await pri.kill9(); oldPriErr += pri.err; unstick(L.mnt); await sleep(r() * 500)
          pri = await startP()
          break
        case 'kill9-secondary': {
          const f0 = syncState(); const acked = readAcks(ackLog)
          proxy.block() // the primary stays out until the restarted copy is checked
          try {
            await sec.kill9(); oldSecErr += sec.err; await sleep(r() * 500)
            sec = await startS()
            await checkCopy(acked, 'after kill -9 of the secondary and restart', f0)
          } finally { proxy.unblock() }
          break
        }
        case 'stop-primary': pri.proc.kill('SIGSTOP'); await sleep(hold); pri.proc.kill('SIGCONT'); break
        case 'stop-secondary': sec.proc.kill('SIGSTOP'); await sleep(hold); sec.proc.kill('SIGCONT'); break
        case 'cut': proxy.cut(); break
        case 'reset': proxy.reset(); break
        case 'stall': proxy.stall(); await sleep(hold); proxy.resume(); break
        case 'delay': proxy.delayMs = Math.round(5 + r() * 150); await sleep(hold * 2); proxy.delayMs = 0; break
        case 'throttle': { // 1-20 Mbit/s each way, as long as a delay is held
          const kbit = Math.round(1000 + r() * 19_000); T.throttleKbit.push(kbit)
          try { link.throttle(kbit); await sleep(hold * 2) } finally { link.unthrottle() }
          break
        }
        case 'flip-primary': case 'cpflip-primary': case 'truncate-primary': case 'delete-primary': {
          // damage to the primary's journal or checkpoint while it is down
          await pri.kill9(); oldPriErr += pri.err; unstick(L.mnt)
          const what = await damageState(L.pstate, kind.slice(0, kind.indexOf('-')), r)
          if (what) { T.flips.push(`run ${k}: primary ${what}`); if (!harmless(what)) runDamage.push(`primary ${what}`) }
          pri = await startP()
          break
        }
        case 'flip-secondary': case 'cpflip-secondary': case 'truncate-secondary': case 'delete-secondary': {
          // the same on the secondary (the primary kept out meanwhile)
          proxy.block()
          try {
            await sec.kill9(); oldSecErr += sec.err
            const what = await damageState(L.sstate, kind.slice(0, kind.indexOf('-')), r)
            if (what) { T.flips.push(`run ${k}: secondary ${what}`); if (!harmless(what)) runDamage.push(`secondary ${what}`) }
            sec = await startS()
          } finally { proxy.unblock() }
          break
        }
        default: { // enospc-PLACE: that filesystem full for a while, then freed
          const place = kind.slice('enospc-'.length)
          try { disks.fill(place); await sleep(hold) } finally { disks.free(place) }
        }
      }
      if (r() < 0.5) await snapshot()
    }
    // Heal, stop the application, converge.
    proxy.heal(); link?.unthrottle(); pri.proc.kill('SIGCONT'); sec.proc.kill('SIGCONT')
    fs.writeFileSync(stopFile, '')
    if (await within(wExit.then(() => true), 90_000, false) === false) { T.hangs++; fail(`the application did not finish within 90 s after the faults stopped (primary: ${JSON.stringify(await status(L.pstate).catch(e => e.message))})`) }
    const tc = Date.now()
    const lagAtStop = await status(L.pstate).then(p => `${p.lagRecords} records, ${p.lagBytes} bytes, ${p.peerState}${p.resync ? ' resync' : ''}`).catch(e => e.message)
    let converged = true
    try { await waitSynced(L, 120_000) } catch (err) {
      // How each daemon ended comes first: CI shows only the start of a long failure.
      converged = false; T.hangs++
      fail(`no convergence within 120 s: ${err.message.slice(0, 400)}\n${ending('primary', pri, priLog())}\n${ending('secondary', sec, oldSecErr + (sec?.err ?? ''))}`)
    }
    const ms = Date.now() - tc
    if (converged) T.worstConvergeMs = Math.max(T.worstConvergeMs, ms)
    const ps = await status(L.pstate).catch(() => null); const ss = await status(L.sstate).catch(() => null)
    for (const d of [...(ps?.damage ?? []), ...(ss?.damage ?? [])]) T.damage.push(`run ${k}: ${typeof d === 'string' ? d : JSON.stringify(d)}`)
    // Damage injected must be named by a daemon (log or status), never silent.
    const damageSaid = /journal damaged|checkpoint .*damaged|damage/i
    if (runDamage.length && !damageSaid.test(oldPriErr + (pri?.err ?? '') + oldSecErr + (sec?.err ?? '')) && !(ps?.damage?.length || ss?.damage?.length)) {
      T.silentDamage += runDamage.length; fail(`damage not reported by either side: ${runDamage.join('; ')}`)
    }
    const diff = differences(L)
    if (diff) {
      const silent = ps && ss && ps.lagRecords === 0 && !ps.journalError && ss.consistent && ss.appliedSeq === ps.lastSeq
      const shown = firstLines(diff, 8)
      if (silent) { T.silentDivergences++; fail(`SILENT divergence (both sides consistent, lag 0):\n${shown}`) } else { T.divergences++; fail(`divergence:\n${shown}`) }
    }
    const acked = readAcks(ackLog)
    T.acked += acked.length
    const lostP = missingAcks(L, acked, 'p'); const lostS = missingAcks(L, acked, 's')
    if (lostP.length || lostS.length) { T.ackedLost += Math.max(lostP.length, lostS.length); fail(`acknowledged writes lost at the end: primary ${lostP.length} (${lostP.slice(0, 5)}), secondary ${lostS.length} (${lostS.slice(0, 5)})`) }
    if (fellBack()) T.fallbacks++
    // Acked writes missing at a snapshot count as lost only if sync never fell back in this
    // run (the fallback is logged when noticed, possibly after the writes it released).
    for (const p of pending) {
      if (fellBack()) T.excludedAfterFallback += p.n
      else { T.ackedLost += p.n; fail(p.what) }
    }
    const wc = (() => { try { return JSON.parse(wOut.trim().split('\n').pop()) } catch { return { raw: wOut.slice(-300) } } })()
    log(`run ${k} seed ${seed} ${mode}${mode === 'sync' ? ` (--sync-timeout ${syncTimeout})` : ''}${fellBack() ? ' FELL BACK' : ''}: ${acked.length} acked, ${wc.iterations ?? '?'} iterations, app errors ${wc.errors ?? '?'}, faults ${JSON.stringify(runFaults)}, converged ${converged ? ms + ' ms' : 'NO'} (lag when the application stopped: ${lagAtStop})${diff ? ', DIVERGED' : ''}`)
    const wErr = wOut.split('\n').filter(l => l.startsWith('workload:'))
    if (wErr.length) log(`  application errors (first): ${wErr.slice(0, 3).join(' | ')}`)
  } catch (err) {
    T.hangs++; fail(`run aborted: ${err.stack?.slice(0, 600)}`)
  } finally {
    fs.writeFileSync(stopFile, '')
    try { pri?.proc.kill('SIGCONT'); sec?.proc.kill('SIGCONT') } catch {}
    proxy.heal(); link?.unthrottle()
    if (w && await within(wExit.then(() => true), 5000, false) === false) w.kill('SIGKILL')
    await stopAll(L, pri, sec)
    unstick(L.mnt)
    if (T.failures.some(f => f.run === k)) disks.keep(L.base)
    disks.close()
    await proxy.close()
    if (process.env.FAULT_DEBUG) log(`--- primary log\n${oldPriErr}${pri?.err}\n--- secondary log\n${oldSecErr}${sec?.err}`)
    if (!T.failures.some(f => f.run === k)) fs.rmSync(L.base, { recursive: true, force: true })
    else {
      // The daemons' logs go with what is kept (a primary that died leaves only them).
      const priLogs = `${oldPriErr}${pri?.err ?? ''}`
      fs.writeFileSync(join(L.base, 'primary.log'), priLogs)
      fs.writeFileSync(join(L.base, 'secondary.log'), `${oldSecErr}${sec?.err ?? ''}`)
      log(`  kept ${L.base} (primary.log, secondary.log); the primary's last lines:\n${lastLines(priLogs, 12)}`)
    }
  }
  T.runs++
}

export async function campaign ({ seed, runs, runMs, basePort = 17550, only = null, budgetMs = Infinity, kinds = envKinds, log = console.log }) {
  const inRange = (lo, hi) => basePort >= lo && basePort + 40 <= hi
  if (!inRange(17500, 17600) && !inRange(18000, 18200)) throw new Error('ports 17500-17599 or 18000-18199 only')
  const T = newTotals()
  log(`fault campaign: FAULT_SEED=${seed} FAULT_RUNS=${runs} FAULT_RUN_MS=${runMs}${process.env.FAULT_TRACK ? ` FAULT_TRACK=${process.env.FAULT_TRACK}` : ''}`)
  const started = Date.now()
  const { link, why } = openLink(basePort)
  T.link = link
    ? `network namespace ${link.name} (veth ${link.hostIf} ${link.hostAddr} <-> ${link.nsIf} ${link.nsAddr})`
    : `loopback: network namespace not used (${why}), no bandwidth limits (throttle skipped)`
  log(`secondary's link: ${T.link}`)
  try {
    for (let k = 0; k < runs; k++) {
      if (only !== null && k !== only) continue
      if (Date.now() - started > budgetMs) { log(`time budget spent: runs ${k}..${runs - 1} not started`); break }
      const mode = k % 3 === 2 ? 'async' : 'sync'
      const syncTimeout = k % 3 === 1 ? 2 : 3600 // every third run may fall back to async
      const ports = { sec: basePort + 2 * (k % 20), proxy: basePort + 2 * (k % 20) + 1 }
      await oneRun(k, runSeed(seed, k), mode, syncTimeout, runMs, ports, kinds, link, T, log)
    }
  } finally { link?.remove() }
  T.elapsedMs = Date.now() - started
  log(summary(T, seed))
  return T
}

export function summary (T, seed) {
  const faults = Object.entries(T.faults).map(([k, v]) => `${k} ${v}`).join(', ')
  return [
    `---- fault campaign FAULT_SEED=${seed}: ${T.runs} runs in ${Math.round(T.elapsedMs / 1000)} s`,
    `secondary's link: ${T.link}`,
    `faults: ${Object.values(T.faults).reduce((a, b) => a + b, 0)} (${faults})`,
    ...(T.throttleKbit.length ? [`bandwidth limits (tc tbf, both ways): ${T.throttleKbit.map(k => (k / 1000).toFixed(1)).join(', ')} Mbit/s`] : []),
    `snapshots checked: ${T.snapshots} (skipped while not consistent: ${T.snapshotsSkipped}; reads taken again because the copy moved under them: ${T.unsteadyReads}); torn (non-prefix) snapshots: ${T.tornSnapshots}`,
    `acknowledged writes: ${T.acked}; lost: ${T.ackedLost}`,
    `divergences: ${T.divergences}; silent divergences: ${T.silentDivergences}; hangs/aborted: ${T.hangs}; runs where sync fell back: ${T.fallbacks} (acked writes missing at a snapshot after a fallback, not counted: ${T.excludedAfterFallback})`,
    `state damaged while stopped (bit flips in journals or checkpoints, segments truncated or deleted): ${T.flips.length}; not reported: ${T.silentDamage}${T.flips.length ? '\n  ' + T.flips.join('\n  ') : ''}`,
    `damage reported: ${T.damage.length}${T.damage.length ? '\n  ' + T.damage.join('\n  ') : ''}`,
    `worst time to converge: ${T.worstConvergeMs} ms`,
    T.failures.length ? `FAILURES (reproduce: FAULT_SEED=${seed} FAULT_ONLY=<run> make faults):\n` + T.failures.map(f => `  run ${f.run} (${f.mode}): ${f.what}`).join('\n') : 'no failures'
  ].join('\n')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const soak = !!process.env.SOAK
  const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
  const runs = Number(process.env.FAULT_RUNS ?? (soak ? 100 : 6))
  const runMs = Number(process.env.FAULT_RUN_MS ?? (soak ? 60_000 : 15_000))
  const only = process.env.FAULT_ONLY !== undefined ? Number(process.env.FAULT_ONLY) : null
  const T = await campaign({ seed, runs, runMs, only, basePort: Number(process.env.FAULT_PORT ?? 17550) })
  process.exit(T.failures.length ? 1 : 0)
}
