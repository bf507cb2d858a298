// timeout: 120
// The network fuzzer's CI profile (scripts/fuzz.mjs; `make fuzz` for a longer run): seeded
// hostile input against a live `replfs serve`, before and after authenticating with the
// secret. Asserts: no crash of serve, no internal error in its log, nothing written outside
// the volumes (sentinel, temp tree, a canary behind a loop device the records name), and a
// real primary still replicates afterwards. FUZZ_SEED=S reproduces a run. Port 17750.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { fuzz, failures } from '../../scripts/fuzz.mjs'

test('network fuzzer (CI profile): serve survives, nothing escapes the volumes, a primary still replicates', async () => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
  const T = await fuzz({ seed, frames: Number(process.env.FUZZ_FRAMES ?? 2500), port: 17750, budgetMs: 45_000 })
  assert.ok(T.frames >= 500, `frames sent: ${T.frames}`)
  assert.ok(T.authenticated >= 50, `authenticated sessions: ${T.authenticated}`)
  assert.ok(T.acks >= 5, `batches applied and acknowledged: ${T.acks}`)
  assert.is(T.crashes, 0, `daemon crashes (FUZZ_SEED=${seed})`)
  assert.equal(T.internalErrors, [], `internal errors in serve's log (FUZZ_SEED=${seed})`)
  assert.equal(T.outside, [], `writes outside the volumes (FUZZ_SEED=${seed})`)
  assert.is(T.stillServes, true, `a real primary replicates afterwards (FUZZ_SEED=${seed})`)
  assert.equal(failures(T), [])
})

test.run()
