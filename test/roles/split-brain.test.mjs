// timeout: 240
// Split brain: the secondary is stopped, the primary writes on; the
// secondary is promoted and writes too; the old primary is demoted and
// serves. Both sides refuse with the documented message and way out, both
// record the per-file report of what each changed (`replfs diverged`), and
// nothing moves. `resolve --discard-local` on the old primary saves its
// writes where the report says and rolls them back: the copies end
// identical with the survivor's data, and only differing blocks are sent.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { bounded, cli, sh } from '../helpers/mount.mjs'
import { layout, differences, status, waitFor } from '../helpers/pair.mjs'
import { sides, serveOn, mountOn, waitPair, stopQuietly } from './roles.mjs'

const portB = 17652
const portA = 17653
const imageSize = 16 << 20

function writeAt (path, off, data) {
  const fd = fs.openSync(path, 'r+')
  try { fs.writeSync(fd, data, 0, data.length, off) } finally { fs.closeSync(fd) }
}
const byPath = (report, vol, path) => report.files.find(f => f.vol === vol && f.path === path)

test('split brain: refused on both sides with a per-file report; resolve keeps the survivor and saves the discarded writes', bounded(220_000, async () => {
  const L = layout('roles-split', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  const { a, b } = sides(L)
  let priA, secB, priB, secA
  try {
    secB = await serveOn(L, b, portB)
    priA = await mountOn(L, a, portB)
    const shared = randomBytes(64 << 10)
    fs.writeFileSync(join(a.mnt, 'one', 'shared.bin'), shared)
    fs.writeFileSync(join(a.mnt, 'one', 'keep.txt'), 'before the split\n')
    await waitPair(a.state, b.state)

    // The link is gone (the secondary stopped); A writes on.
    await secB.stop()
    fs.writeFileSync(join(a.mnt, 'one', 'only-a.txt'), 'written on A alone\n')
    writeAt(join(a.mnt, 'one', 'shared.bin'), 0, Buffer.from('AAAA'))
    const imgA = randomBytes(32 << 10)
    writeAt(join(a.mnt, 'disk'), 2 << 20, imgA)
    sh(`setfattr -n user.side -v A ${join(a.mnt, 'one', 'shared.bin')}`)
    fs.mkdirSync(join(a.mnt, 'one', 'adir'))
    fs.writeFileSync(join(a.mnt, 'one', 'adir', 'f'), 'in a directory A made\n')

    // B is promoted (A is not connected: no --force needed) and writes too.
    const pro = await cli(['promote', '--state', b.state])
    assert.is(pro.code, 0, pro.err)
    priB = await mountOn(L, b, portA)
    fs.writeFileSync(join(b.mnt, 'one', 'only-b.txt'), 'written on B\n')
    writeAt(join(b.mnt, 'one', 'shared.bin'), 100, Buffer.from('BBBB'))
    const imgB = randomBytes(32 << 10)
    writeAt(join(b.mnt, 'disk'), 4 << 20, imgB)
    fs.chmodSync(join(b.mnt, 'one', 'shared.bin'), 0o600)
    fs.renameSync(join(b.mnt, 'one', 'keep.txt'), join(b.mnt, 'one', 'kept.txt'))

    // A is demoted (its last writes never reached B: said so) and serves.
    const dem = await cli(['demote', '--state', a.state])
    assert.is(dem.code, 0, dem.err)
    assert.match(dem.err, /the secondary had not acknowledged sequences \d+\.\.\d+/)
    await priA.waitExit()
    secA = await serveOn(L, a, portA)

    // Both refuse, with the way out; nothing moved.
    const [sb, sa] = await waitFor(async () => {
      const [pb, pa] = [await status(b.state), await status(a.state)]
      return pb.splitBrain && pa.splitBrain && [pb, pa]
    }, 30_000, 'both sides reporting the split brain')
    assert.is(sb.splitBrain.point, sa.splitBrain.point)
    await waitFor(() => /SPLIT_BRAIN/.test(priB.err) && /SPLIT_BRAIN/.test(secA.err), 10_000, 'the refusal in both logs')
    assert.match(priB.err, /SPLIT_BRAIN: split brain: this primary wrote \d+ sequences and the secondary \w+ holds \d+ this side never had, since sequence \d+/)
    for (const [log, dir] of [[priB.err, b.state], [secA.err, a.state]]) {
      assert.match(log, /both sides wrote since sequence \d+; nothing was merged/)
      assert.ok(log.includes(`To give up this side's writes: \`replfs resolve --state ${dir} --discard-local\``), `the way out names this side's state directory: ${log}`)
      assert.ok(log.includes(`\`replfs diverged --state ${dir}\``))
    }
    assert.ok(secA.err.includes(`then \`replfs promote --state ${a.state}\` here`), 'a secondary is told how to keep its writes')
    await waitFor(() => /this secondary recorded a split brain with primary/.test(secA.err), 30_000, 'the secondary refusing the next connection by its own record')
    const human = await cli(['status', '--state', a.state])
    assert.match(human.out, /SPLIT BRAIN\s+since sequence \d+/)
    assert.match(human.out, /way out\s+both sides wrote since sequence/)
    assert.not.ok(fs.existsSync(join(L.s.one, 'only-a.txt')), 'nothing of A reached B')
    assert.not.ok(fs.existsSync(join(L.p.one, 'only-b.txt')), 'nothing of B reached A')

    // The per-file report, on both sides.
    const da = JSON.parse((await cli(['diverged', '--state', a.state, '--json'])).out).splitBrain
    const db = JSON.parse((await cli(['diverged', '--state', b.state, '--json'])).out).splitBrain
    for (const [rec, mine, theirs] of [[da, da.local, da.remote], [db, db.remote, db.local]]) {
      assert.ok(rec && mine && theirs, 'both reports on both sides')
      assert.ok(byPath(mine, 'one', 'only-a.txt')?.ops.includes('create'), 'A created only-a.txt')
      assert.equal(byPath(mine, 'one', 'shared.bin')?.ranges, [[0, 4]])
      assert.equal(byPath(mine, 'disk', '')?.ranges, [[2 << 20, (2 << 20) + imgA.length]])
      assert.not.ok(byPath(mine, 'one', 'only-b.txt'))
      assert.ok(byPath(theirs, 'one', 'only-b.txt')?.ops.includes('create'), 'B created only-b.txt')
      assert.equal(byPath(theirs, 'one', 'shared.bin')?.ranges, [[100, 104]])
      assert.equal(byPath(theirs, 'disk', '')?.ranges, [[4 << 20, (4 << 20) + imgB.length]])
      assert.not.ok(byPath(theirs, 'one', 'only-a.txt'))
    }
    assert.match((await cli(['diverged', '--state', a.state])).out, /this side changed .*\n(.*\n)*\s+one\/only-a\.txt: create/)

    // A gives its writes up: saved, rolled back, and B's data everywhere.
    const res = await cli(['resolve', '--state', a.state, '--discard-local', '--json'])
    assert.is(res.code, 0, res.err)
    const out = JSON.parse(res.out)
    assert.ok(byPath(out.rolledBack, 'one', 'only-a.txt'), 'the report names only-a.txt')
    assert.is(out.rolledBack.bytesWritten, 'written on A alone\n'.length + 4 + imgA.length + 'in a directory A made\n'.length)
    assert.is(fs.readFileSync(join(out.filesDir, 'one', 'only-a.txt'), 'utf8'), 'written on A alone\n')
    assert.is(fs.readFileSync(join(out.filesDir, 'one', 'shared.bin')).subarray(0, 4).toString(), 'AAAA')
    assert.ok(fs.readFileSync(join(out.filesDir, 'disk', `${2 << 20}-${(2 << 20) + imgA.length}.bin`)).equals(imgA), 'the image range A wrote')
    assert.ok(fs.readdirSync(out.journalDir).some(n => n.endsWith('.seg')), 'the journal segments')
    const inspect = await cli(['journal', 'inspect', out.journalDir, '--records'])
    assert.match(inspect.out, /only-a\.txt/)
    await secA.waitExit()

    secA = await serveOn(L, a, portA)
    const { p } = await waitPair(b.state, a.state)
    assert.match(priB.err, /pair decision: resync the rolled back paths: the secondary rolled back its own writes to the common point sequence \d+/)
    // What either side wrote since the common point (~64 KiB of image, a few small files), not the volumes.
    assert.ok(p.sentBytes < 256 << 10, `B sent ${p.sentBytes} bytes: the changed ranges, not the volumes (${imageSize} bytes of image)`)
    assert.is(p.splitBrain, null)
    assert.is((await status(a.state)).splitBrain, null)
    assert.equal(differences(L), null)
    const v = await cli(['verify', '--state', b.state])
    assert.is(v.code, 0, `online verify after the resolve: ${v.out}${v.err}`)
    for (const side of [L.p, L.s]) {
      assert.not.ok(fs.existsSync(join(side.one, 'only-a.txt')))
      assert.is(fs.readFileSync(join(side.one, 'only-b.txt'), 'utf8'), 'written on B\n')
      const got = fs.readFileSync(join(side.one, 'shared.bin'))
      assert.ok(got.subarray(0, 4).equals(shared.subarray(0, 4)) && got.subarray(100, 104).toString() === 'BBBB', 'shared.bin: B\'s data')
      assert.is(fs.statSync(join(side.one, 'shared.bin')).mode & 0o777, 0o600)
      assert.not.match(sh(`getfattr -d ${join(side.one, 'shared.bin')} 2>/dev/null || true`), /user\.side/)
      assert.not.ok(fs.existsSync(join(side.one, 'keep.txt')) || fs.existsSync(join(side.one, 'adir')), 'A\'s view of the tree rolled back')
      assert.is(fs.readFileSync(join(side.one, 'kept.txt'), 'utf8'), 'before the split\n')
      const img = fs.readFileSync(side.disk)
      assert.ok(img.subarray(2 << 20, (2 << 20) + imgA.length).every(x => x === 0), 'A\'s image write rolled back')
      assert.ok(img.subarray(4 << 20, (4 << 20) + imgB.length).equals(imgB), 'B\'s image write')
    }
  } finally {
    if (process.env.PAIR_DEBUG) console.log(priA?.err, secB?.err, priB?.err, secA?.err)
    await stopQuietly([priA, priB, secA, secB], [a.mnt, b.mnt])
  }
}))

test.run()
