#!/usr/bin/env node
// `make fuzz`: a bounded, seeded network fuzzer against a live `replfs serve` (a secondary).
//   FUZZ_SEED=S      the seed (printed; session k of a seed always sends the same input)
//   FUZZ_FRAMES=N    frames to send (default 20000)
//   FUZZ_PORT=P      serve's port (17750-17799 only; default 17751)
//   FUZZ_KEEP=1      keep the temp directory (serve's log is printed on a failure either way)
// Sessions, one connection each, in a seeded random order (scripts/fuzz/gen.mjs makes the
// values):
//  - before authentication: random bytes; frames truncated, oversized, with a bad CRC, empty,
//    not CBOR; random CBOR; hellos of other versions, groups, roles, volumes, with fields of
//    the wrong types; bad, reflected or misplaced auth messages; a hello dripped a few bytes at
//    a time; now and then a burst of connections past the pre-authentication cap;
//  - after authenticating with the secret (the fuzzer has the state directory's): rebases,
//    then batches in order and out of order (gaps, repeats, a wrong chain), of another group
//    or version, with fields of the wrong types, too many records, data past the limits;
//    records escaping the volume root (absolute paths, `..`, NUL, symlinks the fuzzer plants
//    in the copy that lead out), on unknown volumes, with huge sizes and offsets, device
//    nodes (only the null/zero devices and a loop device over a canary file), messages a
//    secondary does not take, bad frames, a frame of the full 16 MiB bound cut after 1 MiB,
//    and a rival node authenticating while this one is attached.
// Checked, and printed as figures: frames sent; daemon crashes (serve exited: must be 0, it
// is restarted to go on); internal errors in serve's log (a TypeError and the like: must be
// 0); bytes written outside the volumes (the sentinel directory, every file in the temp tree
// outside the copy and serve's state, the canary behind the loop device, any fuzz name in
// /, /etc, /tmp: must be 0); peak RSS of serve; and at the end a real primary mount still
// connects and replicates a small write.
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { rng } from './faults.mjs'
import { draws, helloObject, batchObject, badFrame, randomValue, otherMessage, fuzzNames } from './fuzz/gen.mjs'
import { connectClient } from './fuzz/client.mjs'
import { makeEnv, startServe, assertStillServes, imageSize, GROUP, sleep } from '../test/pair-faults/env.mjs'
import { snapshot } from '../test/helpers/tree.mjs'
import { TMP } from '../test/helpers/mount.mjs'
import { encodeFrame } from '../dist/journal/frame.js'
import { encodeValue, chainHash, zeroHash } from '../dist/journal/codec.js'
import { newNonce, authMac } from '../dist/replicate/auth.js'
import { protocolVersion } from '../dist/replicate/messages.js'
import { frameBytesMax, preAuthFrameBytesMax, preAuthConnectionsMax } from '../dist/core/limits.js'

const sessionSeed = (seed, k) => (Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(k, 40503)) >>> 0
const canaryBytes = 256 * 1024
const canaryByte = 0xc5

/** Bugs of the daemon's own code, as they show in its log (not errors it names). */
const internalError = /TypeError|RangeError|ReferenceError|SyntaxError|assertion failed|Cannot read prop|is not a function|Unhandled|ERR_[A-Z_]{3,}/

export function newTotals (seed) {
  return {
    seed, frames: 0, sessions: 0, authenticated: 0, acks: 0, kinds: {}, codes: {}, crashes: 0, crashLogs: [],
    internalErrors: [], outside: [], peakRssKiB: 0, stillServes: null, elapsedMs: 0
  }
}

const bump = (o, k) => { o[k] = (o[k] ?? 0) + 1 }

/** Everything outside the copy and serve's state, by content. */
function outsideTree (E) {
  const out = {}
  for (const n of fs.readdirSync(E.base).sort()) {
    if (['s-data', 's-disk.img', 'sstate'].includes(n)) continue
    out[n] = snapshot(join(E.base, n), { withXattrs: true })
  }
  return out
}

/** What was written outside the volumes; [] when nothing. */
function outsideWrites (E, before, canary) {
  const out = []
  const now = outsideTree(E)
  for (const k of new Set([...Object.keys(before), ...Object.keys(now)])) {
    if (JSON.stringify(before[k]) !== JSON.stringify(now[k])) out.push(`${k} changed`)
  }
  if (canary) {
    // Read through the device: writes to it may still sit in its page cache.
    const dev = fs.readFileSync(canary.loop)
    const bad = dev.findIndex(b => b !== canaryByte)
    if (bad >= 0) out.push(`the canary behind ${canary.loop} was written at byte ${bad}`)
  }
  const where = [E.base, E.sstate, '/', '/etc', '/tmp', TMP]
  for (const dir of where) for (const n of fuzzNames) if (fs.existsSync(join(dir, n))) out.push(`${join(dir, n)} exists`)
  return out
}

/** A loop device over a canary file: the only block device the fuzzer's records name. */
function makeCanary (E, log) {
  const dir = join(E.base, 'canary')
  fs.mkdirSync(dir)
  const file = join(dir, 'canary.img')
  fs.writeFileSync(file, Buffer.alloc(canaryBytes, canaryByte))
  try {
    const loop = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim()
    return { dir, file, loop, rdev: fs.statSync(loop).rdev }
  } catch (err) {
    log(`fuzz: no loop device (${err.message.split('\n')[0]}): device records name only the null and zero devices`)
    return { dir, file, loop: null, rdev: null }
  }
}

const rssKiB = (pid, field) => {
  try { return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) } catch { return 0 }
}

// ---- sessions -------------------------------------------------------------------------

/** Before authentication: one connection, one or a few hostile inputs. */
async function preAuthSession (d, ctx, c, T) {
  const kind = d.pick(['bad-frame', 'hello-variant', 'hello-variant', 'random-cbor', 'drip', 'other-first', 'bad-auth'])
  bump(T.kinds, `pre:${kind}`)
  const hello = helloObject(d, ctx, newNonce())
  switch (kind) {
    case 'bad-frame': {
      const f = badFrame(d, encodeValue(hello), preAuthFrameBytesMax)
      bump(T.kinds, `pre:bad-frame:${f.kind}`)
      c.send(f.bytes)
      if (f.close) return
      break
    }
    case 'hello-variant': c.sendMsg(hello); break
    case 'random-cbor': c.send(encodeFrame(encodeValue(randomValue(d)))); break
    case 'drip': {
      const f = encodeFrame(encodeValue(hello))
      c.send(f.subarray(0, 1)) // one frame, counted once, the rest a few bytes at a time
      for (let i = 1; i < f.length;) { const n = 1 + d.int(8); c.socket.write(f.subarray(i, i + n)); i += n; await sleep(d.int(3)) }
      break
    }
    case 'other-first': c.sendMsg(otherMessage(d, ctx)); break
    case 'bad-auth': {
      // A nonce of bytes: the hello variant drawn may carry another type, which this session's own MACs cannot take.
      const nonce = hello.nonce instanceof Uint8Array ? hello.nonce : newNonce()
      c.sendMsg({ t: 'hello', proto: protocolVersion, group: ctx.group, node: 'fuzzer', role: 'primary', volumes: ctx.volumes, nonce, auth: true })
      const theirs = await c.next(m => m.t === 'hello', 2000)
      const mine = await c.next(m => m.t === 'auth', 2000)
      if (!theirs) break
      c.sendMsg(d.pick([
        () => ({ t: 'auth', mac: newNonce() }),
        () => ({ t: 'auth', mac: mine?.mac ?? newNonce() }), // reflected
        () => ({ t: 'auth', mac: authMac(ctx.secret, 'primary', 'other', nonce, theirs.nonce) }),
        () => ({ t: 'auth', mac: authMac(ctx.secret, 'secondary', ctx.group, nonce, theirs.nonce) }),
        () => ({ t: 'auth', mac: authMac(ctx.secret, 'primary', ctx.group, nonce, theirs.nonce).subarray(0, 31) }),
        () => otherMessage(d, ctx)
      ])())
      break
    }
  }
  await c.settle(150, 1500)
}

/** Authenticates as the primary; resolves to serve's state message, or null. */
async function authenticate (c, ctx, node = 'fuzzer') {
  const nonce = newNonce()
  c.sendMsg({ t: 'hello', proto: protocolVersion, group: ctx.group, node, role: 'primary', volumes: ctx.volumes, nonce, auth: true })
  const theirs = await c.next(m => m.t === 'hello' || m.t === 'error', 5000)
  if (theirs?.t !== 'hello') return null
  c.sendMsg({ t: 'auth', mac: authMac(ctx.secret, 'primary', ctx.group, nonce, theirs.nonce) })
  const st = await c.next(m => m.t === 'state' || m.t === 'error' || m.t === 'undecodable', 5000)
  return st?.t === 'state' ? st : null
}

/** After authentication: a history of hostile and well-formed batches and messages. */
async function postAuthSession (d, ctx, c, T) {
  const state = await authenticate(c, ctx)
  if (!state) { bump(T.kinds, 'post:not-authenticated'); return }
  T.authenticated++
  let next = state.applied + 1
  let prev = Buffer.from(state.hash)
  if (d.chance(0.85)) {
    next = 1; prev = zeroHash
    // Mostly the start of a fresh history; sometimes one no primary would send.
    const seq = d.chance(0.9) ? 1 : d.pick([0, 2, 1000, 2 ** 53 - 1])
    next = seq
    c.sendMsg({ t: 'rebase', seq, prev, generation: `fz-${d.int(1e6)}`, full: d.chance(0.05) })
    if (d.chance(0.6)) c.sendMsg({ t: 'consistent', seq: 0 })
  }
  let last = null
  // A builder session lays down a tree with well-formed batches (symlinks out, device
  // nodes, files) and ends with anything: later sessions meet what it built.
  const builder = d.chance(0.4)
  for (let steps = 1 + d.int(8); steps > 0 && !c.closed; steps--) {
    const kind = builder && steps > 1 ? 'tame-batch'
      : d.chance(0.02) ? d.pick(['big-cut', 'rival'])
        : d.pick(['batch', 'batch', 'batch', 'batch', 'batch', 'out-of-order', 'repeat', 'bad-payload', 'message', 'bad-frame'])
    bump(T.kinds, `post:${kind}`)
    switch (kind) {
      case 'batch': case 'tame-batch': {
        const b = batchObject(d, ctx, next, prev, kind === 'tame-batch' || d.chance(0.5))
        const payload = encodeValue(b)
        c.sendMsg({ t: 'batch', b: payload })
        last = payload
        prev = chainHash(payload)
        next += Array.isArray(b.records) ? Math.max(1, b.records.length) : 1
        break
      }
      case 'out-of-order': {
        const seq = d.pick([next + 1 + d.int(5), next - 1, 0, 1, 2 ** 53 - 1])
        c.sendMsg({ t: 'batch', b: encodeValue(batchObject(d, ctx, seq, d.chance(0.5) ? prev : d.bytes(16))) })
        break
      }
      case 'repeat': c.sendMsg({ t: 'batch', b: last ?? encodeValue(batchObject(d, ctx, next, prev)) }); break
      case 'big-cut': { // a frame of the full bound announced, 1 MiB of it sent, then the close
        const h = Buffer.alloc(8); h.writeUInt32BE(frameBytesMax, 0)
        c.send(Buffer.concat([h, d.bytes(1024 * 1024)]))
        return
      }
      case 'rival': { // another node with the secret while this one is attached: refused
        const r = await connectClient(c.socket.remotePort, () => T.frames++)
        try {
          await authenticate(r, ctx, 'rival-node') // accepted only if serve already dropped this session
          const e = r.error(); if (e) bump(T.codes, e.code)
        } finally { r.destroy() }
        break
      }
      case 'bad-payload': c.sendMsg({ t: 'batch', b: d.chance(0.5) ? d.bytes(1 + d.int(300)) : encodeValue(randomValue(d)) }); break
      case 'message': c.sendMsg(otherMessage(d, ctx)); break
      case 'bad-frame': {
        const f = badFrame(d, encodeValue({ t: 'ping', ts: 1 }), frameBytesMax)
        bump(T.kinds, `post:bad-frame:${f.kind}`)
        c.send(f.bytes)
        if (f.close) return
        break
      }
    }
    if (d.chance(0.3)) await sleep(d.int(20))
  }
  await c.settle(150, 3000)
  T.acks += c.msgs.filter(m => m.t === 'ack').length
}

/** More connections at once than may wait to authenticate: the excess gets BUSY. */
async function flood (d, ctx, port, T) {
  bump(T.kinds, 'flood')
  const conns = []
  try {
    for (let i = 0; i < preAuthConnectionsMax + 4; i++) {
      const c = await connectClient(port, () => T.frames++)
      c.send(encodeFrame(encodeValue(helloObject(d, ctx, newNonce()))).subarray(0, 5))
      conns.push(c)
    }
    await Promise.all(conns.map(c => c.next(m => m.t === 'error', 500)))
    for (const c of conns) { const e = c.error(); if (e) bump(T.codes, e.code) }
  } finally {
    for (const c of conns) c.destroy()
  }
  await sleep(100) // the slots free as serve sees the closes
}

// ---- the run ----------------------------------------------------------------------------

export async function fuzz ({ seed, frames, port = 17751, budgetMs = Infinity, keep = false, log = console.log }) {
  if (port < 17750 || port > 17799) throw new Error('fuzz ports are 17750-17799 only')
  const T = newTotals(seed)
  log(`fuzz: FUZZ_SEED=${seed} FUZZ_FRAMES=${frames}`)
  const E = makeEnv('fuzz')
  const canary = makeCanary(E, log)
  const ctx = {
    group: GROUP, volumes: E.volumes, sentinel: E.sentinel, base: E.base, canaryDir: canary.dir, imageSize, secret: E.secret,
    // [mode, rdev]: a fifo, a socket, /dev/null and /dev/zero (character 1:3, 1:5), a regular
    // file, and the canary's loop device (a block device). No other device is ever named.
    safeNodes: [[0o010644, 0], [0o140644, 0], [0o020666, (1 << 8) | 3], [0o020666, (1 << 8) | 5], [0o100644, 0],
      ...(canary.rdev !== null ? [[0o060600, canary.rdev], [0o060600, canary.rdev]] : [])]
  }
  const started = Date.now()
  let serve = null
  let logs = ''
  // Interrupted (Ctrl-C, a test's timeout): leave no loop device or serve behind.
  const onSignal = (sig) => {
    serve?.proc.kill('SIGKILL')
    if (canary.loop) { try { execFileSync('losetup', ['-d', canary.loop]) } catch {} }
    process.exit(sig === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal)
  try {
    serve = await startServe(E, port)
    const before = outsideTree(E)
    while (T.frames < frames && Date.now() - started < budgetMs) {
      T.sessions++
      // Each session draws from its own seed: what serve answers in one (closing early, say)
      // does not change what the next sends.
      const d = draws(rng(sessionSeed(seed, T.sessions)))
      try {
        if (d.chance(0.02)) await flood(d, ctx, port, T)
        else {
          const c = await connectClient(port, () => T.frames++)
          try {
            if (d.chance(0.4)) await preAuthSession(d, ctx, c, T)
            else await postAuthSession(d, ctx, c, T)
            const e = c.error()
            if (e) bump(T.codes, e.code)
          } finally { c.destroy() }
        }
      } catch (err) {
        bump(T.kinds, `client-error:${err.code ?? err.message}`)
        if (process.env.FUZZ_DEBUG) log(err.stack)
      }
      T.peakRssKiB = Math.max(T.peakRssKiB, rssKiB(serve.proc.pid, 'VmHWM'))
      if (serve.exited) {
        T.crashes++
        T.crashLogs.push(`session ${T.sessions}: serve exited ${JSON.stringify(serve.exited)}:\n${serve.err.slice(-3000)}`)
        log(`fuzz: serve CRASHED at session ${T.sessions} (FUZZ_SEED=${seed}); restarting it`)
        logs += serve.err
        serve = await startServe(E, port)
      }
      if (T.sessions % 200 === 0) log(`fuzz: ${T.sessions} sessions, ${T.frames} frames, ${Math.round((Date.now() - started) / 1000)} s`)
    }
    await sleep(300) // the last session's apply settles
    T.outside = outsideWrites(E, before, canary)
    T.peakRssKiB = Math.max(T.peakRssKiB, rssKiB(serve.proc.pid, 'VmHWM'))
    T.fuzzMs = Date.now() - started
    try {
      await assertStillServes(E, port)
      T.stillServes = true
    } catch (err) {
      T.stillServes = `a real primary could not replicate afterwards: ${err.message}`
    }
    T.outside.push(...(E.outsideChanges() ?? '').split('\n').filter(Boolean))
  } finally {
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal)
    await serve?.stop()
    logs += serve?.err ?? ''
    if (canary.loop) { try { execFileSync('losetup', ['-d', canary.loop]) } catch {} }
    E.cleanupOutside()
    if (!keep) fs.rmSync(E.base, { recursive: true, force: true })
  }
  T.internalErrors = logs.split('\n').filter(l => internalError.test(l)).slice(0, 20)
  T.elapsedMs = Date.now() - started
  T.log = logs
  log(summary(T))
  return T
}

export function failures (T) {
  const out = []
  if (T.crashes) out.push(`${T.crashes} daemon crashes:\n${T.crashLogs.join('\n')}`)
  if (T.internalErrors.length) out.push(`internal errors in serve's log:\n  ${T.internalErrors.join('\n  ')}`)
  if (T.outside.length) out.push(`written outside the volumes: ${T.outside.join('; ')}`)
  if (T.stillServes !== true) out.push(String(T.stillServes))
  return out
}

export function summary (T) {
  const top = (o) => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')
  const f = failures(T)
  return [
    `---- fuzz FUZZ_SEED=${T.seed}: ${T.frames} frames in ${T.sessions} sessions (${T.authenticated} authenticated; ${T.acks} batches acknowledged) in ${Math.round(T.elapsedMs / 1000)} s`,
    `session kinds: ${top(T.kinds)}`,
    `serve's error codes back: ${top(T.codes)}`,
    `daemon crashes: ${T.crashes}; internal errors in its log: ${T.internalErrors.length}; writes outside the volumes: ${T.outside.length}; peak RSS of serve: ${Math.round(T.peakRssKiB / 1024)} MiB`,
    `a real primary replicates afterwards: ${T.stillServes === true ? 'yes' : 'NO'}`,
    f.length ? `FAILURES (reproduce: FUZZ_SEED=${T.seed} FUZZ_FRAMES=${T.frames} make fuzz):\n${f.join('\n')}` : 'no failures'
  ].join('\n')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
  const T = await fuzz({ seed, frames: Number(process.env.FUZZ_FRAMES ?? 20000), port: Number(process.env.FUZZ_PORT ?? 17751), keep: !!process.env.FUZZ_KEEP })
  process.exit(failures(T).length ? 1 : 0)
}
