// timeout: 180
// A primary killed (kill -9) while its state directory is full of its own
// journal (the secondary down, the filesystem smaller than --journal-max),
// restarted on the still full directory: it owes the hot parts. The only
// room to be had is what the secondary's acknowledgements free (trimmed
// segments). Found with FAULT_SEED=13 FAULT_ONLY=5, where the owed parts
// were never re-journalled:
//  - an acknowledgement could not be recorded on a directory without one
//    free byte (the checkpoint is a new file), so nothing was trimmed, ever;
//  - each try re-journalled everything owed from the start: a restate
//    larger than the room took what the acknowledgements had freed, failed,
//    and started over at the next try, for ever.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded, unstick } from '../helpers/mount.mjs'
import { layout, startPair, startPrimary, startSecondary, waitSynced, waitFor, stopAll, differences, status, smallStateFs, unmountState } from '../helpers/pair.mjs'
import { fillFilesystem } from '../../scripts/faults/places.mjs'

// 1 MiB segments (an eighth of the limit); the filesystem (6 MiB) is full before the limit.
const pextra = ['--journal-max', '8M']

// Rewrites a file of argv[2] MiB, 64 KiB at a time, errors ignored (ENOSPC from the journal).
const writer = `
const fs = require('fs')
const fd = fs.openSync(process.argv[1], 'w')
const chunks = Number(process.argv[2]) * 16
for (let i = 0; ; i = (i + 1) % chunks) { try { fs.writeSync(fd, Buffer.alloc(65536, i + 1), 0, 65536, i * 65536) } catch {} }
`


async function killFullRestart (port, fileMiB, syncMs) {
  const L = layout('pair-owed-full', { vols: ['one'] })
  const sfs = smallStateFs(L, 'p', 6)
  let pri, sec, w
  try {
    ({ pri, sec } = await startPair(L, port, { pextra }))
    await sec.kill9()
    sec = null
    w = spawn(process.execPath, ['-e', writer, join(L.mnt, 'one', 'f'), String(fileMiB)], { stdio: 'ignore' })
    // Full for the journal: less room than one write's frame (64 KiB and its
    // record), so every write since fails. Not always 0 bytes: a frame that
    // did not fit is cut back, and what is left stays free unless a small
    // file takes it (a CI run under load waited 20 s for the last pages).
    await waitFor(() => { const f = fs.statfsSync(sfs); return f.bavail * f.bsize < 72 * 1024 }, 20_000, 'the state directory full')
    await pri.kill9()
    unstick(L.mnt)
    w.kill('SIGKILL')
    w = null
    pri = await startPrimary(L, port, { extra: pextra })
    const st = await status(L.pstate)
    assert.match(st.journalError?.message ?? '', /not re-journalled yet/, `status names what is owed: ${JSON.stringify(st.journalError)}`)
    // Not one byte free (the journal took them all in the campaign's run; here a
    // filler takes what the restart's cut of the torn tail gave back).
    fillFilesystem(sfs)
    sec = await startSecondary(L, port)
    await waitSynced(L, syncMs)
    assert.match(pri.err, /re-journalled \(\d+ records\)/)
    await waitFor(async () => (await status(L.pstate)).journal.segments <= 2, 10_000, 'acknowledged segments trimmed')
    assert.ok(fs.existsSync(join(L.pstate, 'reserve')), 'the reserve made again')
    assert.equal(fs.readdirSync(L.pstate).filter(n => n.startsWith('activity.owed-')), [], 'nothing owed is left')
  } finally {
    w?.kill('SIGKILL')
    if (process.env.TEST_DEBUG) console.log(`--- primary log\n${pri?.err}`)
    await stopAll(L, pri, sec)
    unmountState(sfs)
  }
  assert.equal(differences(L), null)
}

test('kill -9 with the state directory full: acknowledgements trimmed on a full directory, the owed parts re-journalled',
  bounded(60_000, () => killFullRestart(18010, 2, 20_000)))

test('owed parts larger than the room: re-journalled a part at a time as acknowledgements make room',
  bounded(90_000, () => killFullRestart(18011, 8, 45_000)))

test.run()
