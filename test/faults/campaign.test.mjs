// timeout: 300
// The fault campaign's CI profile (scripts/faults.mjs; `make faults` for longer runs): a
// seeded campaign of runs against a replicating pair, the secondary in a network namespace the
// campaign makes and removes (on loopback, said so, without root or iproute2), behind a
// controlled TCP proxy, with every fault kind of `make faults`.
// Asserts Jepsen's properties: no acknowledged write lost, no torn (non-prefix) snapshot of
// the secondary, the pair converges, no divergence, silent or not, and every damage made
// to a side's state reported. FAULT_SEED=S
// reproduces a run of this test. Ports 17500-17539 (FAULT_PORT=P: P..P+39, within
// 17500-17599 or 18000-18199).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { campaign, KINDS } from '../../scripts/faults.mjs'

// Every kind: daemons killed and paused, the link cut, reset, stalled, delayed and throttled,
// each side's journal and checkpoint damaged while it is down (bit flips, truncated and
// deleted segments), and each of the four places full for a while. (`throttle` shares the
// schedule's `delay` slot, the damage kinds the `flip-SIDE` slot: one more draw picks which.)
const kinds = KINDS

test('fault campaign (CI profile): nothing acknowledged lost, prefixes only, convergence', async () => {
  const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
  const T = await campaign({ seed, runs: Number(process.env.FAULT_RUNS ?? 6), runMs: 12_000, basePort: Number(process.env.FAULT_PORT ?? 17500), budgetMs: 170_000, kinds })
  assert.ok(T.runs >= 3, `runs completed: ${T.runs}`)
  assert.ok(Object.values(T.faults).reduce((a, b) => a + b, 0) >= 10, 'faults injected')
  assert.is(T.ackedLost, 0, `acknowledged writes lost (FAULT_SEED=${seed})`)
  assert.is(T.tornSnapshots, 0, `torn snapshots (FAULT_SEED=${seed})`)
  assert.is(T.divergences, 0, `divergences (FAULT_SEED=${seed})`)
  assert.is(T.silentDivergences, 0, `silent divergences (FAULT_SEED=${seed})`)
  assert.is(T.hangs, 0, `hangs / aborted runs (FAULT_SEED=${seed})`)
  assert.is(T.silentDamage, 0, `damage no daemon reported (FAULT_SEED=${seed})`)
})

test.run()
