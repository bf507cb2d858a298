// timeout: 180
// The pair's role verbs on a pair set up by `pair init` / `pair join`
// (both "hosts" on loopback, each its own state directory, volumes and
// mountpoint): `pair switchover` on the primary host, then on the other,
// moves the primary with nothing copied again; after the new primary dies
// (kill -9), `pair failover` on the other host promotes it and mounts, and
// `pair failback` on the dead one's host, back, demotes it and serves:
// the copies end identical. Each verb runs the flags `pair init` recorded;
// `--print` shows them. Ports 18220-18229.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync, spawn } from 'node:child_process'
import { tempDir, cli, daemon, unstick, bounded, CLI } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { status, waitFor, hashFile, words } from '../helpers/pair.mjs'

const [portB, portA] = [18220, 18221]
const imageSize = 8 << 20


/** `replfs pair join ARGS` fed the secret file on stdin; resolves once it serves. */
function joinWithSecret (args, secretFile) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    const x = { proc: p, out: '', err: '' }
    const exited = new Promise(res => p.on('exit', res))
    x.stop = async () => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM'); await exited }
    p.stdout.on('data', c => { x.out += c; if (x.out.includes('listening')) resolve(x) })
    p.stderr.on('data', c => { x.err += c })
    p.on('exit', () => reject(new Error(`join exited: ${x.err}`)))
    p.stdin.end(fs.readFileSync(secretFile))
  })
}

/** The primary of `pstate` streams to the secondary of `sstate`, in sync. */
function inSync (pstate, sstate, ms = 60_000) {
  return waitFor(async () => {
    const p = await status(pstate)
    if (p.role !== 'primary' || p.lagRecords !== 0 || p.peerState !== 'streaming' || p.resync) return false
    const s = await status(sstate)
    return s.role === 'secondary' && s.consistent && s.appliedSeq === p.lastSeq && { p, s }
  }, ms, `${pstate} in sync with ${sstate}`)
}

test('pair switchover both ways, then failover and failback, from the recorded settings', bounded(170_000, async () => {
  const base = tempDir('pairroles')
  const d = { pa: join(base, 'a-one'), sa: join(base, 'b-one'), mntA: join(base, 'mnt-a'), mntB: join(base, 'mnt-b'), A: join(base, 'astate'), B: join(base, 'bstate') }
  for (const x of [d.pa, d.sa, d.mntA, d.mntB]) fs.mkdirSync(x)
  const imgA = join(base, 'a-disk.img'); const imgB = join(base, 'b-disk.img')
  const running = []
  const start = async (args, readyWord) => { const x = await daemon(args, { readyWord, timeoutMs: 60_000 }); running.push(x); return x }
  try {
    const init = await cli(['pair', 'init', '--state', d.A, '--group', 'app', '--mount', d.mntA, '--peer', `127.0.0.1:${portB}`, '--listen', `127.0.0.1:${portA}`,
      '--volume', `one=${d.pa}`, '--image', `disk=${imgA}:${imageSize}`, '--remote-state', d.B, '--remote-volume', `one=${d.sa}`, '--remote-image', `disk=${imgB}`,
      '--remote-mount', d.mntB])
    assert.is(init.code, 0, init.err)
    const joinCmd = words(words(init.out.split('\n').find(l => l.trim().startsWith('ssh ')).trim())[2])
    assert.ok(joinCmd.includes('--peer') && joinCmd.includes('--app-mount'), `the join carries the other host's settings: ${joinCmd}`)
    const mountCmd = words(init.out.split('\n').find(l => l.trim().startsWith('replfs mount')).trim())

    // Set up as `pair init` printed it: the join with the secret on its stdin.
    const secB = await joinWithSecret(joinCmd.slice(1), join(d.A, 'secret'))
    running.push(secB)
    const priA = await start(mountCmd.slice(1), 'ready')
    fs.writeFileSync(join(d.mntA, 'one', 'a1.txt'), 'written on A\n')
    await inSync(d.A, d.B)

    // --print: the exact commands, from the recorded settings.
    const pr = await cli(['pair', 'switchover', '--state', d.B, '--print'])
    assert.is(pr.code, 0, pr.err)
    const [change, mountB] = pr.out.trim().split('\n')
    assert.is(change, `replfs promote --state ${d.B}`)
    assert.equal(words(mountB), ['replfs', 'mount', d.mntB, '--group', 'app', '--state', d.B, '--volume', `one=${d.sa}`, '--image', `disk=${imgB}:${imageSize}`,
      '--peer', `127.0.0.1:${portA}`, '--mode', 'async', '--journal-max', '1G', '--on-overflow', 'block', '--secret-file', join(d.B, 'secret')])

    // On the secondary first: refused while the primary is connected, with the way.
    const busy = await cli(['pair', 'switchover', '--state', d.B])
    assert.is(busy.code, 1)
    assert.match(busy.err, /BUSY: the old primary is connected/)
    assert.ok(busy.err.includes(`replfs pair switchover --state ${d.A}\` on 127.0.0.1 first`), busy.err)

    // Switchover: on A (demote, serve), then on B (promote, mount).
    const swA = await start(['pair', 'switchover', '--state', d.A], 'listening')
    assert.match(swA.out, /pair switchover --state/)
    await priA.waitExit()
    const swB = await start(['pair', 'switchover', '--state', d.B], 'ready')
    await secB.stop()
    fs.writeFileSync(join(d.mntB, 'one', 'b1.txt'), 'written on B\n')
    const { p: afterSwitch } = await inSync(d.B, d.A)
    assert.ok(afterSwitch.sentBytes < 64 << 10, `nothing copied again: ${afterSwitch.sentBytes} bytes`)

    // B (now the primary) dies; failover to A; B comes back: failback.
    const child = Number(execFileSync('pgrep', ['-P', String(swB.proc.pid)], { encoding: 'utf8' }).trim().split('\n')[0])
    process.kill(child, 'SIGKILL')
    await swB.waitExit()
    unstick(d.mntB)
    await waitFor(async () => (await status(d.A)).peerState === 'waiting', 15_000, 'A sees B gone')
    const fo = await start(['pair', 'failover', '--state', d.A], 'ready')
    await swA.waitExit() // its serve was stopped by the promotion
    assert.match(fo.out, /pair failback --state/)
    fs.writeFileSync(join(d.mntA, 'one', 'a2.txt'), 'written on A after the failover\n')
    const fb = await start(['pair', 'failback', '--state', d.B], 'listening')
    await inSync(d.A, d.B)
    assert.not.match(fo.err + fb.err, /SPLIT_BRAIN/)
    assert.equal(snapshot(d.sa), snapshot(d.pa))
    assert.is(hashFile(imgA), hashFile(imgB))
    assert.is(fs.readFileSync(join(d.sa, 'a2.txt'), 'utf8'), 'written on A after the failover\n')
    assert.is(fs.readFileSync(join(d.sa, 'b1.txt'), 'utf8'), 'written on B\n')
    const wrong = await cli(['pair', 'failback', '--state', d.B])
    assert.is(wrong.code, 1)
    assert.match(wrong.err, /this step \(demote\) is for a primary/)
  } finally {
    for (const x of running.reverse()) { try { await x.stop() } catch {} }
    unstick(d.mntA); unstick(d.mntB)
  }
}))

test('pair verbs refuse a state directory without pair settings', bounded(30_000, async () => {
  const base = tempDir('pairroles-usage')
  const r = await cli(['pair', 'failover', '--state', base])
  assert.is(r.code, 1)
  assert.match(r.err, /holds no pair\.json/)
}))

test.run()
