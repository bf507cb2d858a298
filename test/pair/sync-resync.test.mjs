// timeout: 150
// Sync mode and a resync: a write + fsync waiting for an absent secondary
// returns, once the secondary is back and rebuilt in full, only when the
// copy holds it, or after the primary said it fell back to async. (It used
// to return at the start of the resync: the rebase's implied
// acknowledgement released every waiting writer while the copy did not
// hold the file, and nothing was logged.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded } from '../helpers/mount.mjs'
import { spawn } from 'node:child_process'
import { layout, startPair, startSecondary, waitSynced, waitFor, stopAll, differences, sleep } from '../helpers/pair.mjs'

// A writer in its own process (the test must go on while it waits).
const writerCode = `
import fs from 'node:fs'
const fd = fs.openSync(process.argv[1], 'w')
fs.writeSync(fd, 'written while the secondary was away')
fs.fsyncSync(fd)
fs.closeSync(fd)
console.log('returned')
`

test('sync mode: a write waiting when a full resync starts returns only once the copy holds it (or the fallback is logged)', bounded(140_000, async () => {
  const L = layout('sync-resync', { vols: ['one'] })
  const port = 17310
  let sec, pri, writer
  try {
    ({ sec, pri } = await startPair(L, port, { mode: 'sync', pextra: ['--sync-timeout', '60'] }))
    await sec.stop(); sec = null
    // What the resync will have to send first (uncaptured: straight into
    // the backing store), and a copy that must be rebuilt in full.
    const block = Buffer.alloc(1 << 20)
    for (let f = 0; f < 6; f++) {
      const fd = fs.openSync(join(L.p.one, `big${f}`), 'w')
      for (let i = 0; i < 32; i++) { block.fill((f * 32 + i) & 255); block.writeUInt32BE(i, 0); fs.writeSync(fd, block) }
      fs.closeSync(fd)
    }
    fs.rmSync(L.sstate, { recursive: true })
    writer = spawn(process.execPath, ['--input-type=module', '-e', writerCode, join(L.mnt, 'one', 'waiting')], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    writer.stdout.on('data', d => { out += d })
    await sleep(1000)
    assert.is(out, '', 'the sync write returned with the secondary away')
    sec = await startSecondary(L, port)
    await waitFor(() => out.includes('returned'), 90_000, 'the writer to return')
    // Returned: in the secondary's journal, on the copy once applied (a moment later).
    const holds = () => fs.existsSync(join(L.s.one, 'waiting')) && fs.readFileSync(join(L.s.one, 'waiting'), 'utf8') === 'written while the secondary was away'
    const there = await waitFor(holds, 5000, 'the write on the copy', 20).then(() => true, () => false)
    const fellBack = /falling back to async/.test(pri.err)
    assert.ok(there || fellBack, `the sync write returned while the copy did not hold it, and no fallback was logged:\n${pri.err.slice(-1500)}`)
    await waitSynced(L, 90_000)
    assert.is(differences(L), null)
  } finally {
    writer?.kill()
    await stopAll(L, pri, sec)
  }
}))

test.run()
