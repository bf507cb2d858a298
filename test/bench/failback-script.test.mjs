// timeout: 300
// scripts/bench/failback.mjs (issue 8's figures of `make bench`) runs at a
// tiny size and prints every figure with its baseline, ratio, target and
// load average. Nothing about the figures' values is asserted (timings on a
// shared box), only that each was measured. Ports 17810-17811.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT, bounded, tempDir } from '../helpers/mount.mjs'

function runScript (env) {
  return new Promise(resolve => {
    const p = spawn(process.execPath, [join(ROOT, 'scripts', 'bench', 'failback.mjs')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''; let err = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => { err += d })
    p.on('close', code => resolve({ code, out, err }))
  })
}

test('the failback and verify benchmark runs at a tiny size and prints its figures', bounded(280_000, async () => {
  const r = await runScript({ BENCH_DIR: tempDir('bench-failback'), BENCH_FB_SIZE: '8M', BENCH_FB_ROUNDS: '1', BENCH_FB_IOPS_ROUNDS: '1', BENCH_FB_FIO_S: '1', BENCH_FB_PORT: '17810' })
  assert.is(r.code, 0, r.out + r.err)
  const figureLine = /: .+ \| baseline .+ \| ratio \d+\.\d\d \(target [^)]+\)?: (met|MISSED)\) \| load \d+\.\d\d \d+\.\d\d \d+\.\d\d/
  for (const what of ['verify throughput', '4 KiB random write IOPS', 'failback resync: bytes sent / bytes changed', 'failback resync time', 'catch-up: bytes sent', 'catch-up time']) {
    const line = r.out.split('\n').find(l => l.startsWith(what))
    assert.ok(line, `a line for ${what} in:\n${r.out}`)
    assert.match(line, figureLine)
  }
  assert.match(r.out, /pair decision: resync the rolled back paths/)
  assert.match(r.out, /pair decision: resume the journal/)
}))

test.run()
