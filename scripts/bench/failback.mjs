#!/usr/bin/env node
// Issue 8's benchmarks, on one image volume replicated over loopback (a
// primary mount on side A, `serve` on side B, each in its own child process):
//   1. failback resync: bytes sent over the wire / bytes changed, and the
//      resync's time next to `rsync --inplace --no-whole-file` bringing a
//      copy of the same image up to date;
//   2. `replfs verify` MiB/s next to `sha256sum` of the image;
//   3. 4 KiB random write IOPS (fio, psync, QD1, on the mount) with and
//      without a periodic verify running at its default rate.
// Rounds are interleaved; figures are medians. Each figure is printed with
// its baseline, their ratio, the target and the load average at the time.
// Nothing is asserted about timings: a missed target is reported as such.
//
// Environment: BENCH_QUICK=1 (128 MiB image, 5 s fio runs, 1 round),
// BENCH_FB_SIZE (image bytes, e.g. 1G), BENCH_FB_ROUNDS (3),
// BENCH_FB_IOPS_ROUNDS (IOPS with/without verify: 5), BENCH_FB_FIO_S (fio run
// seconds, 10), BENCH_FB_PORT (first of two ports, default 17800),
// BENCH_FB_ONLY (a comma list of verify,iops,failback: only those parts),
// BENCH_DIR (work dir, default /tmp/replfs-bench; this uses DIR/failback).
import fs from 'node:fs'
import { join } from 'node:path'
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'

const quick = process.env.BENCH_QUICK === '1'
const work = join(process.env.BENCH_DIR ?? '/tmp/replfs-bench', 'failback')
fs.mkdirSync(work, { recursive: true })
process.env.REPLFS_TEST_TMP = work // the test helpers make their dirs there
const { cli, daemon, mount, unstick } = await import('../../test/helpers/mount.mjs')
const { layout, status, waitFor } = await import('../../test/helpers/pair.mjs')

const parseSize = s => { const m = /^(\d+)([kmg]?)$/i.exec(s); if (!m) throw new Error(`BENCH_FB_SIZE "${s}": a size like 128M or 1G`); return Number(m[1]) * { '': 1, k: 1024, m: 1 << 20, g: 1 << 30 }[m[2].toLowerCase()] }
const imageSize = parseSize(process.env.BENCH_FB_SIZE ?? (quick ? '128M' : '1G'))
const rounds = Number(process.env.BENCH_FB_ROUNDS ?? (quick ? 1 : 3))
// The IOPS of one 10 s fio run moved 1.8k-6.6k here between rounds minutes apart: more rounds.
const iopsRounds = Number(process.env.BENCH_FB_IOPS_ROUNDS ?? (quick ? 1 : Math.max(rounds, 5)))
const fioSecs = Number(process.env.BENCH_FB_FIO_S ?? (quick ? 5 : 10))
const portB = Number(process.env.BENCH_FB_PORT ?? 17800) // B serves here
const portA = portB + 1 // A serves here after the failover
const block = 4096
const only = process.env.BENCH_FB_ONLY ? process.env.BENCH_FB_ONLY.split(',') : null
const wanted = part => !only || only.includes(part)

const MiB = 1 << 20
const now = () => performance.now() / 1000
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const median = xs => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2 }
const f = (x, d = 2) => Number.isFinite(x) ? x.toFixed(d) : String(x)
const log = m => process.stderr.write(`[failback-bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`)
const lines = []
/** One figure: the value, its baseline, the ratio, the target and whether it was met, the load. */
function figure (what, value, unit, baseline, baseUnit, ratio, target, met, note = '') {
  const l = `${what}: ${value} ${unit} | baseline ${baseline} ${baseUnit} | ratio ${f(ratio)} (target ${target}: ${met ? 'met' : 'MISSED'}) | load ${load()}${note ? ` | ${note}` : ''}`
  lines.push(l); console.log(l)
}
const note = l => { lines.push(l); console.log(l) }

// --- the pair: either side primary (a mount) or secondary (serve) ----------------------
const L = layout('fb', { vols: [], image: { name: 'disk', size: imageSize } })
const A = { side: 'p', state: L.pstate, mnt: L.mnt }
const B = { side: 's', state: L.sstate, mnt: join(L.base, 'mnt-b') }
fs.mkdirSync(B.mnt)
const img = x => L[x.side].disk
const volArgs = x => ['--image', `disk=${img(x)}:${imageSize}`, '--secret-file', L.secretFile]
const serveOn = (x, port) => daemon(['serve', '--listen', `127.0.0.1:${port}`, '--state', x.state, '--group', 'g', ...volArgs(x)], { readyWord: 'listening', timeoutMs: 120_000 })
const mountOn = (x, port, extra = []) => mount([x.mnt, '--group', 'g', '--state', x.state, ...volArgs(x), '--peer', `127.0.0.1:${port}`, ...extra], { timeoutMs: 120_000 })
const running = new Set()
const started = d => { running.add(d); return d }
async function stop (d) { if (!d) return; await d.stop('SIGTERM', 120_000); running.delete(d) }
async function run (args, ms = 600_000) {
  const r = await cli(args, { timeoutMs: ms })
  if (r.code !== 0) throw new Error(`replfs ${args.join(' ')} exited ${r.code}: ${r.out}${r.err}`)
  return r
}
/** The primary of `p` streams with nothing unacknowledged, the secondary of `s` is consistent at its last sequence. */
const waitPair = (p, s, ms = 600_000) => waitFor(async () => {
  const ps = await status(p.state)
  if (ps.role !== 'primary' || ps.lagRecords !== 0 || ps.peerState !== 'streaming' || ps.resync || ps.journalError) return false
  const ss = await status(s.state)
  if (ss.role !== 'secondary' || !ss.consistent || ss.appliedSeq !== ps.lastSeq) return false
  return { p: ps, s: ss }
}, ms, `${p.state} streaming to ${s.state} in sync`, 100)

const sameFiles = (a, b) => spawnSync('cmp', ['-s', a, b]).status === 0
/** fio in a child process (async: the daemons' status can be polled meanwhile); its write figures. */
async function fio (name, args) {
  const { stdout } = await promisify(execFile)('fio', [`--name=${name}`, '--ioengine=psync', '--fallocate=none', '--output-format=json', ...args], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 900_000 })
  return JSON.parse(stdout).jobs[0].write
}
/** Bytes the periodic verify of `state` compared while `promise` ran (polled every 500 ms; a pass
 *  that ended between two polls counts to its total), and how many passes ended meanwhile. */
async function verifyProgressDuring (state, promise) {
  let done = false
  const p = promise.finally(() => { done = true })
  const pass = v => v?.running ? { started: v.running.startedMs, done: v.running.bytesDone, total: v.running.bytesTotal } : null
  let prev = pass((await status(state)).verify)
  let bytes = 0; let passes = 0
  while (!done) {
    await new Promise(resolve => setTimeout(resolve, 500))
    const v = (await status(state)).verify
    const cur = pass(v)
    if (prev && cur && cur.started === prev.started) { bytes += cur.done - prev.done; prev = cur; continue }
    if (prev) { passes++; if (!v?.last?.error) bytes += prev.total - prev.done }
    if (cur) bytes += cur.done
    prev = cur
  }
  return { result: await p, bytes, passes }
}
/** `count` distinct 4 KiB blocks of the image, at random, each written with random bytes through the mount. */
function writeBlocks (mnt, count) {
  const total = imageSize / block
  const picked = new Set()
  while (picked.size < count) picked.add(Math.floor(Math.random() * total))
  const fd = fs.openSync(join(mnt, 'disk'), 'r+')
  try {
    for (const b of picked) fs.writeSync(fd, randomBytes(block), 0, block, b * block)
    fs.fsyncSync(fd)
  } finally { fs.closeSync(fd) }
  return picked.size * block
}
/** TCP payload bytes the peer at `port` (the secondary's listening port) received on its established connections. */
function wireReceived (port) {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' })
  return [...out.matchAll(/bytes_received:(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
}
/** Seconds (performance clock) when the primary's connection to `port` is established. */
const connectedAt = port => waitFor(() => wireReceived(port) > 0 && now(), 120_000, `a connection to port ${port}`, 20)
function rsyncUpdate (src, dst) {
  const t0 = now()
  const r = execFileSync('rsync', ['--inplace', '--no-whole-file', '--ignore-times', '--stats', src, dst], { encoding: 'utf8', timeout: 900_000 })
  const secs = now() - t0
  const sent = Number(/Total bytes sent: ([\d,]+)/.exec(r)?.[1].replace(/,/g, '') ?? NaN)
  const literal = Number(/Literal data: ([\d,]+)/.exec(r)?.[1].replace(/,/g, '') ?? NaN)
  return { secs, sent, literal }
}

let priA, secB, priB, secA
const changedBlocks = Math.ceil(imageSize / block / 100)
try {
  note(`replfs verify and failback benchmark (issue 8), ${new Date().toISOString()}, ${(await import('node:os')).cpus().length} cores, image ${f(imageSize / MiB, 0)} MiB, ${rounds} interleaved rounds (IOPS: ${iopsRounds}), fio ${fioSecs} s${quick ? ', quick' : ''}`)

  // --- setup: A primary, B secondary; the image filled through the mount and replicated ---
  secB = started(await serveOn(B, portB))
  priA = started(await mountOn(A, portB))
  log(`filling the ${imageSize / MiB} MiB image through A's mount`)
  let t0 = now()
  await fio('fill', [`--filename=${join(A.mnt, 'disk')}`, '--rw=write', '--bs=1M', `--size=${imageSize}`, '--end_fsync=1'])
  await waitPair(A, B)
  note(`setup: image filled through the mount (1 MiB writes) and replicated in ${f(now() - t0, 1)} s; load ${load()}`)
  if (!sameFiles(img(A), img(B))) throw new Error('the images differ after the initial replication')

  // --- 2. verify throughput next to sha256sum, interleaved --------------------------------
  // Besides sha256sum (coreutils: its own SHA-256, no SHA extensions), `openssl dgst -sha256`
  // (the same OpenSSL SHA-256 that verify's node:crypto uses) as a second, stricter baseline.
  if (wanted('verify')) {
  const verifyMibs = []; const shaMibs = []; const sslMibs = []; const verifyWall = []
  for (let r = 0; r < rounds; r++) {
    const order = [['verify', 'sha', 'ssl'], ['sha', 'ssl', 'verify'], ['ssl', 'verify', 'sha']][r % 3]
    for (const w of order) {
      if (w === 'ssl') {
        const t = now()
        execFileSync('openssl', ['dgst', '-sha256', img(A)], { encoding: 'utf8', timeout: 900_000 })
        sslMibs.push(imageSize / MiB / (now() - t))
        continue
      }
      if (w === 'verify') {
        const t = now()
        const v = JSON.parse((await run(['verify', '--state', A.state, '--json'])).out)
        if (!v.clean) throw new Error(`verify found mismatches: ${JSON.stringify(v.found).slice(0, 500)}`)
        verifyWall.push(now() - t)
        verifyMibs.push(v.bytesCompared / MiB / v.seconds)
      } else {
        const t = now()
        execFileSync('sha256sum', [img(A)], { encoding: 'utf8', timeout: 900_000 })
        shaMibs.push(imageSize / MiB / (now() - t))
      }
    }
    log(`verify round ${r + 1}: verify ${f(verifyMibs.at(-1), 1)} MiB/s, sha256sum ${f(shaMibs.at(-1), 1)} MiB/s, openssl ${f(sslMibs.at(-1), 1)} MiB/s`)
  }
  const vm = median(verifyMibs); const sm = median(shaMibs)
  figure('verify throughput (replfs verify --json: bytes compared / its seconds)', f(vm, 1), 'MiB/s', f(sm, 1), 'MiB/s (sha256sum of the primary image)', vm / sm, '>= 0.8', vm / sm >= 0.8,
    `rounds verify ${verifyMibs.map(x => f(x, 0)).join('/')} MiB/s (CLI wall ${verifyWall.map(x => f(x, 1)).join('/')} s), sha256sum ${shaMibs.map(x => f(x, 0)).join('/')} MiB/s; verify reads and hashes both copies on this one box (two processes), sha256sum one`)
  const om = median(sslMibs)
  figure('verify throughput next to openssl dgst -sha256', f(vm, 1), 'MiB/s', f(om, 1), 'MiB/s (openssl dgst -sha256 of the primary image)', vm / om, '>= 0.8', vm / om >= 0.8,
    `rounds openssl ${sslMibs.map(x => f(x, 0)).join('/')} MiB/s`)

  }

  // --- 3. random-write IOPS with and without a periodic verify ------------------------------
  if (wanted('iops')) {
  const iops = { off: [], on: [] }; const passSeen = []
  for (let r = 0; r < iopsRounds; r++) {
    const order = r % 2 ? ['on', 'off'] : ['off', 'on']
    for (const w of order) {
      await stop(priA)
      priA = started(await mountOn(A, portB, w === 'on' ? ['--verify-interval', '1s'] : []))
      await waitPair(A, B)
      // A pass running, or one ended already: at the test's tiny size a pass takes milliseconds,
      // and a poll every 100 ms could miss every one of them running.
      if (w === 'on') await waitFor(async () => { const v = (await status(A.state)).verify; return v?.running ?? v?.last }, 60_000, 'a periodic verify pass')
      const t = now()
      const { result: res, bytes, passes } = await verifyProgressDuring(A.state, fio('rand', [`--filename=${join(A.mnt, 'disk')}`, '--rw=randwrite', '--bs=4k', '--iodepth=1', `--size=${imageSize}`, '--overwrite=1', '--time_based', `--runtime=${fioSecs}`]))
      iops[w].push(res.iops)
      if (w === 'on') passSeen.push(`${f(bytes / MiB / (now() - t), 1)} MiB/s verified${passes ? `, ${passes} pass(es) ended` : ''}`)
      log(`iops round ${r + 1} verify ${w}: ${f(res.iops, 0)}`)
    }
  }
  await stop(priA)
  priA = started(await mountOn(A, portB))
  await waitPair(A, B)
  const on = median(iops.on); const off = median(iops.off)
  figure('4 KiB random write IOPS (fio psync QD1 on the mount) during a periodic verify (--verify-interval 1s, default --verify-rate 32M)', f(on, 0), 'IOPS', f(off, 0), 'IOPS without verify', on / off, '>= 0.8 (<= 20% fewer)', on / off >= 0.8,
    `rounds with ${iops.on.map(x => f(x, 0)).join('/')}, without ${iops.off.map(x => f(x, 0)).join('/')}; verify progress during each run: ${passSeen.join('; ')}`)

  }

  // --- 1. failover, writes on the old primary that never reached B, failback --------------
  if (wanted('failback')) {
  // The realistic "demoted side has changed blocks" case of the roles design: A loses its
  // secondary and writes on (async), B is promoted; A is demoted and serves B: split brain,
  // refused; `resolve --discard-local` on A saves and rolls back its writes, and B restates
  // exactly the ranges A changed. B writes nothing, so all that moves is A's rollback.
  log(`failover: B stopped, A writes ${changedBlocks} random 4 KiB blocks (1%), B promoted, A demoted`)
  await stop(secB)
  const changed = writeBlocks(A.mnt, changedBlocks)
  const dem = await cli(['demote', '--state', A.state], { timeoutMs: 120_000 })
  if (dem.code !== 0) throw new Error(`demote A: ${dem.err}`)
  await priA.waitExit(); running.delete(priA)
  await run(['promote', '--state', B.state])
  priB = started(await mountOn(B, portA))
  // The rsync baseline's copy: A's image as it is now (with its changes), to be brought to B's.
  const copy = join(L.base, 'rsync-copy.img')
  fs.copyFileSync(img(A), copy)
  secA = started(await serveOn(A, portA))
  await waitFor(async () => (await status(A.state)).splitBrain && (await status(B.state)).splitBrain, 120_000, 'both sides reporting the split brain')
  t0 = now()
  const res = JSON.parse((await run(['resolve', '--state', A.state, '--discard-local', '--json'])).out)
  const resolveSecs = now() - t0
  await secA.waitExit(); running.delete(secA)
  const sentBefore = (await status(B.state)).sentBytes
  t0 = now()
  secA = started(await serveOn(A, portA))
  const tConn = await connectedAt(portA) // the primary reconnects with a backoff (up to 10 s): not resync time
  const { p: pB } = await waitPair(B, A)
  const resyncSecs = now() - tConn; const resyncWall = now() - t0
  const wire = wireReceived(portA)
  const sent = pB.sentBytes - sentBefore
  if (!sameFiles(img(A), img(B))) throw new Error('the images differ after the failback')
  const decision = /pair decision: [^\n]*/.exec(priB.err.split('pair decision:').length > 2 ? priB.err.slice(priB.err.lastIndexOf('pair decision:')) : priB.err)?.[0] ?? '(no decision logged)'
  note(`failback case: A (old primary) wrote ${changedBlocks} random 4 KiB blocks (1% of ${imageSize / block}, ${f(changed / MiB, 2)} MiB) with its secondary gone; B promoted and wrote nothing; A demoted, split brain, \`resolve --discard-local\` on A (${f(resolveSecs, 1)} s, rolled back ${res.rolledBack?.bytesWritten ?? '?'} bytes), A serves: ${decision.slice(0, 160)}`)
  figure('failback resync: bytes sent / bytes changed (status sentBytes)', `${sent} / ${changed}`, 'bytes', 1, '(DRBD 4 KiB bitmap)', sent / changed, '<= 1.1', sent / changed <= 1.1,
    `TCP payload A received on the resync connection: ${wire} bytes (${f(wire / changed)}x)`)
  const rs = rsyncUpdate(img(B), copy)
  if (!sameFiles(img(B), copy)) throw new Error('rsync left the copy different from B\'s image')
  figure('failback resync time (B connected to A -> pair in sync)', f(resyncSecs, 2), 's', f(rs.secs, 2), 's (rsync --inplace --no-whole-file, same image, same changes)', resyncSecs / rs.secs, '< 1 (faster)', resyncSecs < rs.secs,
    `from A's serve start ${f(resyncWall, 2)} s (B's reconnect backoff included), resolve before it ${f(resolveSecs, 2)} s; rsync sent ${rs.sent} bytes (${f(rs.sent / changed)}x changed; literal ${rs.literal})`)

  // Case b: the new primary's writes while the old one is down, then failback by journal.
  log(`failback b: A stopped, B writes ${changedBlocks} random 4 KiB blocks, A serves again`)
  await stop(secA)
  fs.copyFileSync(img(A), copy)
  const changedB = writeBlocks(B.mnt, changedBlocks)
  const sentBeforeB = (await status(B.state)).sentBytes
  t0 = now()
  secA = started(await serveOn(A, portA))
  const tConn2 = await connectedAt(portA)
  const { p: pB2 } = await waitPair(B, A)
  const catchSecs = now() - tConn2; const catchWall = now() - t0
  const wireB = wireReceived(portA)
  const sentB = pB2.sentBytes - sentBeforeB
  if (!sameFiles(img(A), img(B))) throw new Error('the images differ after catch-up')
  const decisionB = priB.err.slice(priB.err.lastIndexOf('pair decision:')).split('\n')[0]
  note(`catch-up case: A (demoted, secondary) stopped; B (new primary) wrote ${changedBlocks} random 4 KiB blocks; A serves again: ${decisionB.slice(0, 160)}`)
  figure('catch-up: bytes sent / bytes changed (status sentBytes)', `${sentB} / ${changedB}`, 'bytes', 1, '', sentB / changedB, '<= 1.1', sentB / changedB <= 1.1, `TCP payload A received: ${wireB} bytes (${f(wireB / changedB)}x)`)
  const rs2 = rsyncUpdate(img(B), copy)
  if (!sameFiles(img(B), copy)) throw new Error('rsync left the copy different from B\'s image')
  figure('catch-up time (B connected to A -> pair in sync)', f(catchSecs, 2), 's', f(rs2.secs, 2), 's (rsync --inplace --no-whole-file)', catchSecs / rs2.secs, '< 1 (faster)', catchSecs < rs2.secs, `from A's serve start ${f(catchWall, 2)} s; rsync sent ${rs2.sent} bytes (${f(rs2.sent / changedB)}x changed; literal ${rs2.literal})`)
  fs.rmSync(copy, { force: true })
  }
} catch (err) {
  process.exitCode = 1
  console.log(`failback benchmark failed: ${err.stack ?? err}`)
  for (const [n, d] of [['A mount', priA], ['B serve', secB], ['B mount', priB], ['A serve', secA]]) if (d?.err) console.log(`--- ${n} log (tail)\n${d.err.split('\n').slice(-15).join('\n')}`)
} finally {
  for (const d of running) { try { await d.stop('SIGTERM', 60_000) } catch {} }
  unstick(A.mnt); unstick(B.mnt)
  if (process.env.BENCH_KEEP !== '1') fs.rmSync(L.base, { recursive: true, force: true })
}
