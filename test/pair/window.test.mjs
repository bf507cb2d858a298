// timeout: 120
// The sender's window in async mode (replicate/sender.ts): an application of
// small writes makes one batch per write, and more than 256 of them go out
// without waiting for an acknowledgement (16 MiB bounds the window, not the
// count), or the pair goes one window per round trip and falls behind. With
// the secondary stopped, the batches in flight pass 256; let go, the pair
// converges to an identical copy.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

const port = 17330
const writes = 1500

test('async: more than 256 small batches in flight, then an identical copy', bounded(100_000, async () => {
  const L = layout('pair-window', { vols: ['one'] })
  let pri, sec
  let stopped = false
  try {
    ({ pri, sec } = await startPair(L, port, { mode: 'async' }))
    sec.proc.kill('SIGSTOP')
    stopped = true
    const fd = fs.openSync(join(L.mnt, 'one', 'f'), 'w')
    try {
      const block = Buffer.alloc(4096)
      for (let i = 0; i < writes; i++) {
        block.fill(i & 255)
        fs.writeSync(fd, block, 0, block.length, ((i * 7919) % writes) * 4096)
      }
    } finally {
      fs.closeSync(fd)
    }
    const p = await waitFor(async () => {
      const s = await status(L.pstate)
      return s.inFlightBatches > 256 ? s : false
    }, 20_000, 'more than 256 batches in flight')
    assert.ok(p.inFlightBatches <= writes + 10, `in flight: ${p.inFlightBatches}`)
    sec.proc.kill('SIGCONT')
    stopped = false
    await waitSynced(L, 60_000)
  } finally {
    if (stopped) sec.proc.kill('SIGCONT')
    await stopAll(L, pri, sec)
  }
  assert.is(differences(L), null)
}))

test.run()
