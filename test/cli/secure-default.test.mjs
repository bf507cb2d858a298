// timeout: 120
// Refuse what cannot work, before anything is written: sync mode or TLS
// flags without a peer, a non-loopback peer without a secret, a state
// directory inside a volume or the mountpoint, `serve` on a primary's state
// directory and `mount` on a secondary's. A mount with a loopback peer and
// no secret makes one in its state directory (0600), says so, and keeps it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, cli, daemon, mount, tempDir, unstick } from '../helpers/mount.mjs'

function env (prefix) {
  const base = tempDir(prefix)
  const E = { base, src: join(base, 'src'), copy: join(base, 'copy'), mnt: join(base, 'mnt'), state: join(base, 'state') }
  for (const d of [E.src, E.copy, E.mnt]) fs.mkdirSync(d)
  return E
}

async function refused (args, re) {
  const r = await cli(args, { timeoutMs: 20_000 })
  assert.is.not(r.code, 0, `${args.join(' ')}: exit 0\n${r.out}`)
  assert.match(r.err, re, `${args.join(' ')}: ${r.err}`)
  assert.is(r.err.trim().split('\n').length, 1, `one clear line: ${r.err}`)
  assert.not.match(r.out, /ready|listening/)
  return r
}

test('mount: sync mode, TLS or a secret without --peer, and a remote peer without a secret, are refused; nothing is created', bounded(60_000, async () => {
  const E = env('secure-mount')
  const m = ['mount', E.src, E.mnt, '--state', E.state]
  await refused([...m, '--mode', 'sync'], /--mode sync needs --peer/)
  await refused([...m, '--tls-cert', '/x', '--tls-key', '/y', '--tls-ca', '/z'], /--tls-\* flags need --peer/)
  await refused([...m, '--peer', '10.11.12.13:7788'], /refusing to replicate to 10\.11\.12\.13 without a shared secret/)
  await refused([...m, '--peer', 'example.invalid:7788'], /without a shared secret/)
  assert.not.ok(fs.existsSync(E.state), 'a refused mount created its state directory')
}))

test('a state directory inside a volume or the mountpoint is refused (mount and serve)', bounded(60_000, async () => {
  const E = env('secure-place')
  await refused(['mount', E.src, E.mnt, '--state', join(E.src, '.replfs')], /inside volume src/)
  await refused(['mount', E.src, E.mnt, '--state', E.src], /inside volume src/)
  await refused(['mount', E.src, E.mnt, '--state', join(E.mnt, 'st')], /inside the mountpoint/)
  await refused(['serve', '--listen', '127.0.0.1:17302', '--group', 'g', '--volume', `src=${E.copy}`, '--state', join(E.copy, 'st')], /inside volume src/)
  await refused(['serve', '--listen', '127.0.0.1:17302', '--group', 'g', '--volume', `src=${E.copy}`, '--mount', E.mnt, '--state', join(E.mnt, 'st')], /inside the mountpoint/)
  assert.is(fs.readdirSync(E.src).length, 0)
  assert.is(fs.readdirSync(E.copy).length, 0)
  assert.is(fs.readdirSync(E.mnt).length, 0)
}))

test('serve on a primary\'s state directory and mount on a secondary\'s are refused; a loopback peer without a secret gets one made, kept across starts', bounded(90_000, async () => {
  const E = env('secure-role')
  const pstate = join(E.base, 'pstate')
  const sstate = join(E.base, 'sstate')
  // A primary with a loopback peer (nobody listening): it makes a secret.
  let pri = await mount([E.src, E.mnt, '--state', pstate, '--peer', '127.0.0.1:17303'])
  try {
    assert.match(pri.err, /created a shared secret in .*pstate\/secret \(mode 0600\)/)
  } finally {
    await pri.stop(); unstick(E.mnt)
  }
  const secret = fs.readFileSync(join(pstate, 'secret'), 'utf8')
  assert.is(fs.statSync(join(pstate, 'secret')).mode & 0o777, 0o600)
  pri = await mount([E.src, E.mnt, '--state', pstate, '--peer', '127.0.0.1:17303'])
  try {
    assert.not.match(pri.err, /created a shared secret/)
  } finally {
    await pri.stop(); unstick(E.mnt)
  }
  assert.is(fs.readFileSync(join(pstate, 'secret'), 'utf8'), secret, 'kept, not replaced')
  const sec = await daemon(['serve', '--listen', '127.0.0.1:17303', '--state', sstate, '--volume', `src=${E.copy}`], { readyWord: 'listening' })
  // A second start on a running daemon's state directory touches none of its files.
  const files = () => fs.readdirSync(sstate).filter(n => n !== 'control.sock').sort().map(n => `${n}:${fs.statSync(join(sstate, n)).mtimeMs}`).join(',')
  const running = files()
  await refused(['serve', '--listen', '127.0.0.1:17311', '--state', sstate, '--volume', `src=${E.copy}`], /JOURNAL_LOCKED: state directory .* is in use by process/)
  assert.is(files(), running)
  await sec.stop()
  const before = fs.readdirSync(pstate).sort().join(',')
  await refused(['serve', '--listen', '127.0.0.1:17303', '--state', pstate, '--volume', `src=${E.copy}`], /belongs to a primary/)
  assert.is(fs.readdirSync(pstate).sort().join(','), before, 'the refused serve changed the primary\'s state directory')
  await refused(['mount', E.src, E.mnt, '--state', sstate], /belongs to a secondary/)
}))

test.run()
