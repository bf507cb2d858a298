// timeout: 120
// `status` tells the truth: a link that went quiet is not `streaming`
// within a heartbeat and a half (not the 10 s dead-peer timeout), a stuck
// apply, a failing journal and damage are shown, and a user who may not
// reach the control socket is told that (not "no daemon is running").
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { bounded, CLI, cli } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, status, waitFor } from '../helpers/pair.mjs'
import { humanStatus } from '../../dist/cli/status.js'

test('human status shows a stuck apply, a failing journal, damage and silence', () => {
  const sec = humanStatus({
    role: 'secondary', group: 'g', peer: '127.0.0.1:1', peerState: 'silent', peerSilentSec: 3.4, appliedSeq: 7, consistent: false,
    batchesApplied: 1, bytesApplied: 10, lastError: 'APPLY_BLOCKED: ...',
    applyError: { seq: 8, vol: 0, path: 'big', message: 'ENOSPC: no space left on device', since: '2026-01-01T00:00:00Z', attempts: 4 },
    damage: ['journal damaged: /s/00000000000000000001.seg at byte 500 (crc): sequences 5..5 lost']
  })
  assert.match(sec, /consistent\s+no \(applying is stuck/)
  assert.match(sec, /apply error\s+STUCK at sequence 8, volume 0 path "big" .*ENOSPC/)
  assert.match(sec, /damage\s+journal damaged: .* at byte 500 \(crc\): sequences 5\.\.5/)
  assert.match(sec, /silent \(nothing heard for 3\.4 s\)/)
  const pri = humanStatus({ role: 'primary', group: 'g', mode: 'async', peer: 'x:1', peerState: 'streaming', journalError: { since: 't0', message: 'ENOSPC: no space left on device' } })
  assert.match(pri, /journal error\s+appends failing since t0, retried: ENOSPC/)
})

test('a non-root user who cannot reach the control socket is told so', bounded(30_000, async () => {
  const L = layout('status-perm', { vols: ['one'] })
  const port = 17308
  let pair
  try {
    pair = await startPair(L, port)
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'status', '--state', L.sstate], { encoding: 'utf8', timeout: 15_000 })
    assert.is.not(r.status, 0)
    assert.match(r.stderr, /permission denied on .*control\.sock for uid 65534/, r.stderr)
    assert.match(r.stderr, /as that user/)
    assert.not.match(r.stderr, /no replfs daemon is running/)
    // And a state directory with no daemon still says that.
    const none = await cli(['status', '--state', L.base])
    assert.match(none.err, /no replfs daemon is running/)
  } finally {
    await stopAll(L, pair?.pri, pair?.sec)
  }
}))

test('a link that goes quiet is not streaming within a heartbeat and a half', bounded(60_000, async () => {
  const L = layout('status-silent', { vols: ['one'] })
  const port = 17309
  let pair
  try {
    pair = await startPair(L, port)
    pair.sec.proc.kill('SIGSTOP')
    const t0 = Date.now()
    const p = await waitFor(async () => { const p = await status(L.pstate); return p.peerState !== 'streaming' && p }, 6000, 'the primary to stop calling the link streaming')
    const took = Date.now() - t0
    console.log(`primary status left 'streaming' ${took} ms after the secondary stopped: ${p.peerState}, silent ${p.peerSilentSec} s`)
    assert.is(p.peerState, 'silent')
    assert.ok(took < 5000, `took ${took} ms`)
    pair.sec.proc.kill('SIGCONT')
    await waitFor(async () => (await status(L.pstate)).peerState === 'streaming', 15_000, 'streaming again')
  } finally {
    pair?.sec.proc.kill('SIGCONT')
    await stopAll(L, pair?.pri, pair?.sec)
  }
}))

test.run()
