// timeout: 90
// Authentication and listening policy with the real CLI. A primary mount
// whose secret differs from the secondary's is refused: its log and `status
// --json` lastError say AUTH_FAILED, and so does the serve log; nothing is
// replicated, and with the right secret the same pair then replicates.
// A secret is required everywhere: a side started without --secret-file
// makes its own in its state directory (loopback) and says so, so it is
// refused until both have the same; `serve` on a non-loopback address
// without a secret is refused with a clear error (no --insecure any more);
// a secret file readable by others or too short is refused too.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, cli, daemon, unstick } from '../helpers/mount.mjs'
import { makeEnv, startServe, startPrimary, writeSecret, waitFor, status, sleep, assertStillServes } from './env.mjs'

test('a primary with another secret: AUTH_FAILED in its log, its status and the serve log; nothing replicated', bounded(60_000, async () => {
  const E = makeEnv('faults-auth')
  const wrong = join(E.base, 'wrong-secret')
  writeSecret(wrong)
  const port = 17220
  let serve, pri
  try {
    serve = await startServe(E, port)
    pri = await startPrimary(E, port, { secretFile: wrong })
    fs.writeFileSync(join(E.mnt, 'data', 'f'), 'must not arrive')
    const st = await waitFor(async () => {
      const s = await status(E.pstate)
      return s.lastError && s.lastError.includes('AUTH_FAILED') && s
    }, 15_000, 'AUTH_FAILED in the primary\'s status')
    assert.not.equal(st.peerState, 'streaming')
    await waitFor(() => pri.err.includes('AUTH_FAILED'), 5000, 'AUTH_FAILED in the mount log')
    await waitFor(() => serve.err.includes('AUTH_FAILED'), 5000, 'AUTH_FAILED in the serve log')
    assert.match(serve.err, /secret/, 'the serve log says what differs')
    // The CLI's status says it too.
    const out = await cli(['status', '--state', E.pstate, '--json'])
    assert.is(out.code, 0, out.err)
    assert.match(JSON.parse(out.out).lastError, /AUTH_FAILED/)
    const human = await cli(['status', '--state', E.pstate])
    assert.match(human.out, /AUTH_FAILED/)
    // The secondary learned nothing and keeps waiting.
    await sleep(500)
    assert.not.ok(fs.existsSync(join(E.sdata, 'f')), 'a file reached the secondary without authentication')
    const ss = await status(E.sstate)
    assert.is(ss.appliedSeq, 0)
    assert.is(ss.peerState, 'waiting')
    assert.match(ss.lastError ?? '', /AUTH_FAILED/)
    // The primary keeps serving writes while refused.
    fs.writeFileSync(join(E.mnt, 'data', 'g'), 'still writable')
    assert.is(pri.exited, null)
    assert.is(serve.exited, null)
    await pri.stop(); unstick(E.mnt); pri = null
    // Right secret: the same secondary takes the pair (the written files arrive).
    await assertStillServes(E, port)
    assert.is(fs.readFileSync(join(E.sdata, 'f'), 'utf8'), 'must not arrive')
    assert.is(fs.readFileSync(join(E.sdata, 'g'), 'utf8'), 'still writable')
    assert.is(E.outsideChanges(), null)
  } finally {
    await pri?.stop(); unstick(E.mnt)
    await serve?.stop()
    E.cleanupOutside()
  }
}))

test('a primary without --secret-file against a serve with one, and the reverse: each makes its own secret (said in its log), AUTH_FAILED at both ends', bounded(40_000, async () => {
  const E = makeEnv('faults-nosecret')
  const port = 17221
  let serve, pri
  try {
    serve = await startServe(E, port)
    pri = await daemon(['mount', E.mnt, '--group', 'g', '--state', E.pstate, '--volume', `data=${E.pdata}`, '--image', `disk=${E.pdisk}:${1 << 20}`, '--peer', `127.0.0.1:${port}`])
    await waitFor(async () => (await status(E.pstate)).lastError?.includes('AUTH_FAILED'), 15_000, 'AUTH_FAILED in the primary status')
    await waitFor(() => serve.err.includes('AUTH_FAILED'), 5000, 'AUTH_FAILED in the serve log')
    assert.match(pri.err, /created a shared secret in .*pstate\/secret/)
    assert.is(fs.statSync(join(E.pstate, 'secret')).mode & 0o777, 0o600)
    await pri.stop(); unstick(E.mnt); pri = null
    await serve.stop()
    // Serve without a secret on loopback, primary with one.
    serve = await daemon(['serve', '--listen', `127.0.0.1:${port}`, '--state', E.sstate, '--group', 'g', '--volume', `data=${E.sdata}`, '--image', `disk=${E.sdisk}:${1 << 20}`], { readyWord: 'listening' })
    pri = await startPrimary(E, port)
    await waitFor(async () => (await status(E.pstate)).lastError?.includes('AUTH_FAILED'), 15_000, 'AUTH_FAILED (secondary has its own secret)')
    await waitFor(() => serve.err.includes('AUTH_FAILED'), 5000, 'AUTH_FAILED in the serve log')
    assert.match(serve.err, /created a shared secret in .*sstate\/secret/)
    assert.not.ok(fs.existsSync(join(E.sdata, 'secret')), 'nothing in the copy')
  } finally {
    await pri?.stop(); unstick(E.mnt)
    await serve?.stop()
  }
}))

test('serve on a non-loopback address without a secret is refused, --insecure is gone; a secret given or in the state directory starts it', bounded(30_000, async () => {
  const E = makeEnv('faults-listen')
  const base = ['--state', E.sstate, '--group', 'g', '--volume', `data=${E.sdata}`]
  for (const addr of ['0.0.0.0:17230', '[::]:17230']) {
    const r = await cli(['serve', '--listen', addr, ...base], { timeoutMs: 15_000 })
    assert.is.not(r.code, 0, `${addr}: exit code`)
    assert.match(r.err, /refusing to listen on .* without a shared secret/, r.err)
    assert.match(r.err, /pair init/, 'the error says how to proceed')
    assert.is(r.err.trim().split('\n').length, 1, `one clear line: ${r.err}`)
    assert.not.match(r.out, /listening/)
  }
  // Nothing of the state was created by the refused starts.
  assert.not.ok(fs.existsSync(E.sstate), 'a refused serve created its state directory')
  const ins = await cli(['serve', '--listen', '0.0.0.0:17231', '--insecure', ...base], { timeoutMs: 15_000 })
  assert.is.not(ins.code, 0, 'no way around the secret')
  assert.not.ok(fs.existsSync(E.sstate))
  // With a secret no --insecure is needed.
  const withSecret = await daemon(['serve', '--listen', '0.0.0.0:17232', '--secret-file', E.secretFile, ...base], { readyWord: 'listening' })
  await withSecret.stop()
  // Loopback makes one in the state directory, and says so.
  fs.rmSync(E.sstate, { recursive: true })
  const lo = await daemon(['serve', '--listen', '127.0.0.1:17233', ...base], { readyWord: 'listening' })
  await lo.stop()
  assert.match(lo.err, /created a shared secret/)
  assert.is(fs.statSync(join(E.sstate, 'secret')).mode & 0o777, 0o600)
  // Then off loopback too, that one is used (as `pair join` leaves it).
  const again = await daemon(['serve', '--listen', '0.0.0.0:17233', ...base], { readyWord: 'listening' })
  await again.stop()
  assert.not.match(again.err, /created a shared secret/)
}))

test('secret files: readable by others, too short, missing: refused with a clear error', bounded(30_000, async () => {
  const E = makeEnv('faults-secretfile')
  const base = ['serve', '--listen', '127.0.0.1:17234', '--state', E.sstate, '--group', 'g', '--volume', `data=${E.sdata}`]
  const open = join(E.base, 'open'); fs.writeFileSync(open, 'a-long-enough-secret-string'); fs.chmodSync(open, 0o644)
  const short = join(E.base, 'short'); writeSecret(short, 'short')
  for (const [file, re] of [[open, /readable by others/], [short, /shorter than 16 bytes/], [join(E.base, 'absent'), /cannot read the secret file/]]) {
    const r = await cli([...base, '--secret-file', file], { timeoutMs: 15_000 })
    assert.is.not(r.code, 0)
    assert.match(r.err, re)
    // And the same file refused by the primary side.
    const m = await cli(['mount', E.mnt, '--group', 'g', '--state', E.pstate, '--volume', `data=${E.pdata}`, '--peer', '127.0.0.1:17234', '--secret-file', file], { timeoutMs: 15_000 })
    assert.is.not(m.code, 0)
    assert.match(m.err, re)
  }
  // The secret never appears on a command line or in a log.
  const s = await daemon([...base, '--secret-file', E.secretFile], { readyWord: 'listening' })
  try {
    assert.not.ok(fs.readFileSync(`/proc/${s.proc.pid}/cmdline`, 'utf8').includes(E.secret.toString()))
    assert.not.ok((s.out + s.err).includes(E.secret.toString()))
  } finally {
    await s.stop()
    unstick(E.mnt)
  }
}))

test.run()
