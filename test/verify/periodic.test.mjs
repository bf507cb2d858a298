// timeout: 120
// mount --verify-interval: periodic passes at a bounded rate find a
// corruption of the copy by themselves; `status` shows a running pass's
// progress and the last result; an operator's verify takes precedence
// over a periodic pass.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, cli } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, status, waitFor, waitSynced } from '../helpers/pair.mjs'

const port = 17630
const imageSize = 16 << 20

test('periodic verify finds a flipped byte; status shows progress and the last result', bounded(110_000, async () => {
  const L = layout('verify-periodic', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port, { pextra: ['--verify-interval', '1s', '--verify-rate', '4M'] }))
    fs.writeFileSync(join(L.mnt, 'one', 'f'), Buffer.alloc(100_000, 3))
    await waitSynced(L)
    const running = await waitFor(async () => (await status(L.pstate)).verify?.running, 30_000, 'a periodic pass running')
    assert.ok(running.periodic && running.bytesTotal === imageSize + 100_000, JSON.stringify(running))
    const clean = await waitFor(async () => (await status(L.pstate)).verify?.last, 30_000, 'a periodic pass done')
    assert.ok(clean.clean, clean.summary)
    assert.match(clean.summary, /^verify: clean: /)

    const fd = fs.openSync(L.s.disk, 'r+')
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 12345)
    fs.closeSync(fd)
    const bad = await waitFor(async () => { const l = (await status(L.pstate)).verify?.last; return l && !l.clean && l }, 60_000, 'a periodic pass finding the flipped byte')
    assert.match(bad.summary, /^verify: DIVERGENT: 1 mismatches \(1 data\)/)
    const human = await cli(['status', '--state', L.pstate])
    assert.match(human.out, /last verify +\S+: verify: DIVERGENT/)
    assert.match(human.out, /verify every +1 s at 4.0 MiB\/s/)
    assert.match(pri.err, /periodic verify: the secondary DIVERGES/)

    // The operator's verify goes first, even while a periodic pass runs.
    await waitFor(async () => (await status(L.pstate)).verify?.running, 30_000, 'a periodic pass running')
    const r = await cli(['verify', '--state', L.pstate, '--repair', '--json'], { timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.out + r.err)
    assert.equal(JSON.parse(r.out).found.map(m => [m.volume, m.kind, m.ranges]), [['disk', 'data', [[0, 65536]]]])
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('--verify-interval is checked: it needs --peer and a duration', bounded(30_000, async () => {
  const L = layout('verify-flags', { vols: ['one'] })
  let r = await cli(['mount', L.p.one, L.mnt, '--state', L.pstate, '--verify-interval', '1h'])
  assert.equal(r.code, 1)
  assert.match(r.err, /--verify-interval needs --peer/)
  r = await cli(['mount', L.mnt, '--group', 'g', '--state', L.pstate, '--volume', `one=${L.p.one}`, '--peer', '127.0.0.1:17631', '--secret-file', L.secretFile, '--verify-interval', 'soon'])
  assert.equal(r.code, 1)
  assert.match(r.err, /--verify-interval "soon" is not a duration/)
}))

test.run()
