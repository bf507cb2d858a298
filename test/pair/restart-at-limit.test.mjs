// timeout: 120
// A primary killed (kill -9) while its journal is at --journal-max (block,
// the secondary down) restarts without passing the limit: what recovery
// would re-journal waits, owed and named in status (the pair is not in
// sync), until the secondary is back and its acknowledgements make room;
// then the pair converges to identical copies.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded, unstick } from '../helpers/mount.mjs'
import { layout, startPair, startPrimary, startSecondary, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

const MiB = 1 << 20
const port = 18000
const pextra = ['--journal-max', '4M', '--on-overflow', 'block']

const writer = `
const fs = require('fs')
const fd = fs.openSync(process.argv[1], 'w')
for (let i = 0; i < 64; i++) fs.writeSync(fd, Buffer.alloc(262144, i + 1), 0, 262144, i * 262144)
`

test('kill -9 at the journal limit: the restart stays within it, owes the hot parts, then converges', bounded(100_000, async () => {
  const L = layout('pair-restart-limit', { vols: ['one'] })
  let pri, sec, w
  try {
    ({ pri, sec } = await startPair(L, port, { pextra }))
    await sec.kill9()
    sec = null
    w = spawn(process.execPath, ['-e', writer, join(L.mnt, 'one', 'big')], { stdio: 'ignore' })
    await waitFor(async () => (await status(L.pstate)).journalBytes >= 4 * MiB, 20_000, 'the journal at its limit')
    await pri.kill9()
    unstick(L.mnt)
    w.kill('SIGKILL')
    pri = await startPrimary(L, port, { extra: pextra })
    const st = await status(L.pstate)
    assert.ok(st.journalBytes <= 4 * MiB + 512 * 1024, `the restart stays within the limit: ${st.journalBytes} bytes`)
    assert.match(st.journalError?.message ?? '', /not re-journalled yet .*limit/, `status names what is owed: ${JSON.stringify(st.journalError)}`)
    assert.match(pri.err, /recovery: \d+ hot parts .* not re-journalled yet/)
    sec = await startSecondary(L, port)
    await waitSynced(L, 60_000)
    assert.match(pri.err, /re-journalled \(\d+ records\)/)
  } finally {
    w?.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
  assert.equal(fs.readdirSync(L.pstate).filter(n => n.startsWith('activity.owed-')), [], 'nothing owed is left')
}))

test.run()
