// timeout: 180
// Initial sync of pre-existing data while applications write: the primary
// holds 200 MiB in files; the secondary already has most of them (some
// identical, some differing in a block, one shorter, one missing) plus
// entries the primary does not have. While the resync runs, a writer
// writes, renames and deletes through the mount. The pair ends identical,
// and the resync sent far less than the total: identical blocks were
// compared by checksum, not sent again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { layout, startSecondary, startPrimary, waitSynced, waitFor, stopAll, differences, status } from '../helpers/pair.mjs'

const port = 17160
const MiB = 1 << 20
const files = 40
const fileBytes = 5 * MiB

function content (i) {
  const b = Buffer.alloc(fileBytes, i)
  for (let off = 0; off < fileBytes; off += 4096) b.writeUInt32BE(off ^ (i << 24), off)
  return b
}

// Writes, renames, deletes through the mount until told to stop.
const writer = `
const fs = require('fs')
const [mnt, stop] = process.argv.slice(1)
const v = mnt + '/one'
let n = 0
for (let i = 0; !fs.existsSync(stop); i++) {
  try {
    switch (i % 6) {
      case 0: fs.writeFileSync(v + '/new' + (i % 30), Buffer.alloc(20000 + i, i % 256)); break
      case 1: if (i < 30) { const fd = fs.openSync(v + '/d' + (i % 3) + '/f' + (i % 40), 'r+'); fs.writeSync(fd, Buffer.alloc(8192, i % 256), 0, 8192, (i * 12345) % ${fileBytes}); fs.closeSync(fd); break }
      case 2: if (i < 20) fs.renameSync(v + '/d' + (i % 3) + '/f' + (i % 40), v + '/moved' + i); break
      case 3: if (i < 20) fs.unlinkSync(v + '/d' + (i % 3) + '/f' + ((i + 7) % 40)); break
      case 4: fs.mkdirSync(v + '/made/' + (i % 5), { recursive: true }); break
      case 5: fs.renameSync(v + '/new' + ((i + 3) % 30), v + '/new' + ((i + 11) % 30)); break
    }
    n++
  } catch {}
}
console.log(n)
`

test('initial sync of 200 MiB with writes during it: identical, identical blocks not resent', bounded(160_000, async () => {
  const L = layout('pair-initial', { vols: ['one'] })
  // Primary: 40 files of 5 MiB in three directories.
  for (let d = 0; d < 3; d++) { fs.mkdirSync(join(L.p.one, `d${d}`)); fs.mkdirSync(join(L.s.one, `d${d}`)) }
  const path = (root, i) => join(root, `d${i % 3}`, `f${i}`)
  for (let i = 0; i < files; i++) {
    const b = content(i)
    fs.writeFileSync(path(L.p.one, i), b)
    if (i === 39) continue // missing on the secondary
    if (i === 38) { fs.writeFileSync(path(L.s.one, i), b.subarray(0, 3 * MiB + 17)); continue } // shorter
    if (i === 36 || i === 37) b.fill(0xee, 2 * MiB, 2 * MiB + 100) // one block differs
    fs.writeFileSync(path(L.s.one, i), b)
  }
  fs.writeFileSync(path(L.s.one, 35), 'stale'); // rewritten whole
  fs.mkdirSync(join(L.s.one, 'extra', 'deep'), { recursive: true })
  fs.writeFileSync(join(L.s.one, 'extra', 'deep', 'x'), 'only on the secondary')
  fs.writeFileSync(join(L.s.one, 'extra.txt'), 'only on the secondary')
  fs.symlinkSync('nowhere', join(L.s.one, 'd1', 'link'))
  const total = files * fileBytes

  let pri, sec, w
  const stopFile = join(L.base, 'stop')
  try {
    sec = await startSecondary(L, port)
    pri = await startPrimary(L, port)
    let out = ''
    w = spawn(process.execPath, ['-e', writer, L.mnt, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] })
    w.stdout.on('data', d => { out += d })
    const wDone = new Promise(resolve => w.on('exit', resolve))
    // The resync runs while the writer writes; its progress is in status.
    const seen = await waitFor(async () => { const s = await status(L.pstate); return s.resync?.bytesTotal > 0 && s.resync.bytesDone > 0 ? s.resync : null }, 20_000, 'resync progress in status', 20)
    assert.equal(seen.kind, 'full')
    assert.ok(seen.bytesTotal >= total * 0.8, `resync total ${seen.bytesTotal}`) // the writer has removed a few files already
    assert.ok('rateBytesPerSec' in seen && 'etaSec' in seen, JSON.stringify(seen))
    await waitFor(async () => (await status(L.pstate)).resync === null, 60_000, 'the resync to end', 50)
    fs.writeFileSync(stopFile, '')
    await wDone
    assert.ok(Number(out) > 20, `the writer ran during the resync: ${out.trim()} operations`)
    await waitSynced(L, 60_000)
    const m = /resync sent \((\d+) bytes of data, (\d+) compared\)/.exec(pri.err)
    assert.ok(m, pri.err)
    const sent = Number(m[1])
    assert.ok(Number(m[2]) >= total * 0.8, `compared ${m[2]} of ${total}`)
    // Different or missing: f39 (5 MiB), the tail of f38 (2 MiB), f35 (5 MiB),
    // a block each of f36/f37; plus whole restates of the three files the
    // writer renamed (a renamed file is new to the manifest, and the touched
    // pass restates it whole: up to 10 MiB each), and the blocks of the five
    // writes into existing files (a changed block is a differing block).
    assert.ok(sent < total * 0.3, `resync sent ${sent} bytes of ${total}: identical blocks were sent again`)
    assert.ok(sent >= 12 * MiB, `resync sent ${sent}: the differing blocks at least`)
  } finally {
    fs.writeFileSync(stopFile, '')
    w?.kill('SIGKILL')
    await stopAll(L, pri, sec)
  }
  assert.equal(differences(L), null)
  fs.rmSync(L.base, { recursive: true, force: true })
}))

test.run()
