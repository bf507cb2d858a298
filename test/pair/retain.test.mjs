// timeout: 180
// Retention of a primary without a peer (--retain 2M): a pair syncs, the
// primary then runs alone and writes far more than 2 MiB; its journal stays
// near 2 MiB, status and the log say what was dropped and what is tracked
// for a later peer. Started with its peer again, it sends a partial resync
// of exactly what changed (the tracked extents and what the journal still
// held), and the replica ends identical.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, mount, unstick, cli } from '../helpers/mount.mjs'
import { layout, startPair, startPrimary, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

const port = 17710
const MiB = 1 << 20

test('--retain 2M: the journal stays bounded, drops are shown, a later peer gets a partial resync', bounded(150_000, async () => {
  const L = layout('pair-retain', { vols: ['one'] })
  const big = Buffer.alloc(32 * MiB)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  fs.writeFileSync(join(L.p.one, 'big'), big)
  let pri, sec, alone
  try {
    ({ pri, sec } = await startPair(L, port))
    fs.writeFileSync(join(L.mnt, 'one', 'before'), 'synced before the primary ran alone')
    await waitSynced(L)
    await pri.stop()
    unstick(L.mnt)
    pri = null

    const refused = await cli(['mount', L.mnt, '--group', 'g', '--state', L.pstate, '--volume', `one=${L.p.one}`, '--peer', `127.0.0.1:${port}`, '--retain', '2M'])
    assert.is(refused.code, 1)
    assert.match(refused.err, /--retain is for a primary without --peer/)
    const bad = await cli(['mount', L.mnt, '--group', 'g', '--state', L.pstate, '--volume', `one=${L.p.one}`, '--retain', '2 weeks'])
    assert.match(bad.err, /bad --retain "2 weeks"/)

    alone = await mount([L.mnt, '--group', 'g', '--state', L.pstate, '--volume', `one=${L.p.one}`, '--retain', '2M'])
    // Namespace changes, then 12 MiB of writes into the shared file, 256 KiB
    // at a time, 320 KiB apart: six times the retention.
    fs.mkdirSync(join(L.mnt, 'one', 'made'))
    for (let i = 0; i < 20; i++) fs.writeFileSync(join(L.mnt, 'one', 'made', `f${i}`), Buffer.alloc(100_000, i))
    fs.renameSync(join(L.mnt, 'one', 'before'), join(L.mnt, 'one', 'made', 'renamed'))
    fs.unlinkSync(join(L.mnt, 'one', 'made', 'f3'))
    fs.chmodSync(join(L.mnt, 'one', 'made', 'f4'), 0o600)
    const fd = fs.openSync(join(L.mnt, 'one', 'big'), 'r+')
    for (let i = 0; i < 48; i++) fs.writeSync(fd, Buffer.alloc(256 * 1024, (i * 7 + 3) % 256), 0, 256 * 1024, i * 320 * 1024)
    fs.closeSync(fd)
    const st = await waitFor(async () => {
      const s = await status(L.pstate)
      return s.retention?.trackedPaths > 0 && s.journal.bytes <= 3 * MiB && s.retention
    }, 20_000, 'segments dropped by retention (the namespace changes among them), the journal near 2 MiB')
    // Within 20 s: retention waits for the backing sync, which the journal's
    // growth brings forward (half the retention here; its period is 30 s).
    assert.is(st.retain, '2097152 bytes')
    assert.ok(st.foldedRecords > 0 && st.droppedRecords >= st.foldedRecords, JSON.stringify(st))
    assert.ok(st.trackedPaths > 0 && st.trackedRanges > 0, JSON.stringify(st))
    assert.ok(st.droppedBytes >= 8 * MiB, `dropped ${st.droppedBytes} bytes`)
    assert.match(alone.out + alone.err, /retention \(2097152 bytes\): dropped journal segment \d+\.\.\d+ .* not on any peer: a later peer gets a resync/)
    const human = await cli(['status', '--state', L.pstate])
    assert.match(human.out, /retention\s+2097152 bytes: \d+ segments dropped/)
    assert.match(human.out, /tracked\s+\d+ paths, \d+ byte ranges: a later peer gets a resync/)
    // One more change the journal still holds when the peer comes back.
    fs.writeFileSync(join(L.mnt, 'one', 'last'), 'still in the journal')
    await alone.stop()
    if (process.env.PAIR_DEBUG) console.log(alone.err)
    unstick(L.mnt)
    alone = null

    pri = await startPrimary(L, port)
    await waitSynced(L, 60_000)
    assert.match(pri.err, /partial resync of the secondary starts/)
    const sent = Number(/resync sent \((\d+) bytes of data/.exec(pri.err)?.[1])
    // 12 MiB of the big file, and the ~2 MB of new files (restated as paths
    // and as a directory too: the dirty set's marks overlap).
    assert.ok(sent >= 12 * MiB && sent < 24 * MiB, `the resync sent ${sent} bytes: what changed, not the whole 32 MiB file again`)
  } finally {
    if (alone) { await alone.stop(); unstick(L.mnt) }
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
}))

test.run()
