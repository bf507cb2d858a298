// timeout: 240
// Failover after the primary dies with writes its secondary never got
// (the secondary's host stopped, then kill -9 of the primary): the secondary is
// promoted and written; the old primary comes back, is demoted (its
// recovery re-journals what was in flight) and serves. The pair refuses as
// a split brain: the dead primary's unshipped writes are never dropped
// silently. `resolve --discard-local` on it keeps them aside and reports
// them; the failback then moves only what either side changed.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { bounded, cli, unstick } from '../helpers/mount.mjs'
import { layout, differences, status, waitFor, sleep } from '../helpers/pair.mjs'
import { sides, serveOn, mountOn, waitPair, stopQuietly } from './roles.mjs'

const portB = 17654
const portA = 17655
const imageSize = 16 << 20

test('kill -9 of a primary with unshipped writes, failover, failback through resolve', bounded(220_000, async () => {
  const L = layout('roles-unclean', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  const { a, b } = sides(L)
  let priA, secB, priB, secA
  try {
    secB = await serveOn(L, b, portB)
    priA = await mountOn(L, a, portB)
    const before = randomBytes(200 << 10)
    fs.writeFileSync(join(a.mnt, 'one', 'before.bin'), before)
    await waitPair(a.state, b.state)

    // The link goes (B's host stops: a stall would not do, what A sent
    // before it would still be in B's socket buffer); A writes what B never
    // gets, then dies.
    await secB.stop()
    for (let i = 0; i < 20; i++) fs.writeFileSync(join(a.mnt, 'one', `lost-${i}.txt`), `unshipped ${i}\n`)
    await sleep(300) // group commit: the batches are in A's journal
    await priA.kill9()
    unstick(a.mnt)

    // Failover: B is promoted and written.
    const pro = await cli(['promote', '--state', b.state])
    assert.is(pro.code, 0, pro.err)
    // What B holds of them (it may have applied the first few before it stalled): the survivor's data.
    const onB = Object.fromEntries(fs.readdirSync(L.s.one).filter(n => n.startsWith('lost-')).map(n => [n, fs.readFileSync(join(L.s.one, n), 'utf8')]))
    priB = await mountOn(L, b, portA)
    fs.writeFileSync(join(b.mnt, 'one', 'after.txt'), 'written on B after the failover\n')
    const img = randomBytes(16 << 10)
    const fd = fs.openSync(join(b.mnt, 'disk'), 'r+'); fs.writeSync(fd, img, 0, img.length, 3 << 20); fs.closeSync(fd)

    // A is back: demoted (recovery of the unclean stop) and serving: refused.
    const dem = await cli(['demote', '--state', a.state])
    assert.is(dem.code, 0, dem.err)
    secA = await serveOn(L, a, portA)
    await waitFor(async () => (await status(a.state)).splitBrain && (await status(b.state)).splitBrain, 30_000, 'the split brain on both sides')
    await waitFor(() => /SPLIT_BRAIN: split brain/.test(priB.err), 10_000, 'the refusal in B\'s log')
    assert.ok(fs.existsSync(join(L.p.one, 'lost-19.txt')) && !fs.existsSync(join(L.p.one, 'after.txt')), 'nothing moved')

    // A's unshipped writes are given up, kept aside, reported.
    const res = await cli(['resolve', '--state', a.state, '--discard-local', '--json'])
    assert.is(res.code, 0, res.err)
    const out = JSON.parse(res.out)
    const lost = out.rolledBack.files.filter(f => /^lost-\d+\.txt$/.test(f.path))
    assert.ok(lost.length > 0, `the report names the unshipped files: ${JSON.stringify(out.rolledBack.files.map(f => f.path))}`)
    for (const f of lost) assert.is(fs.readFileSync(join(out.filesDir, 'one', f.path), 'utf8'), `unshipped ${f.path.match(/\d+/)[0]}\n`)
    await secA.waitExit()

    secA = await serveOn(L, a, portA)
    const { p } = await waitPair(b.state, a.state)
    assert.match(priB.err, /pair decision: resync the rolled back paths/)
    assert.ok(p.sentBytes < 256 << 10, `B sent ${p.sentBytes} bytes`)
    assert.equal(differences(L), null)
    for (const side of [L.p, L.s]) {
      assert.ok(fs.readFileSync(join(side.one, 'before.bin')).equals(before))
      assert.is(fs.readFileSync(join(side.one, 'after.txt'), 'utf8'), 'written on B after the failover\n')
      for (const f of lost) {
        const got = fs.existsSync(join(side.one, f.path)) ? fs.readFileSync(join(side.one, f.path), 'utf8') : undefined
        assert.is(got, onB[f.path], `${f.path} rolled back to what B had`)
      }
      assert.ok(lost.some(f => !fs.existsSync(join(side.one, f.path))), 'files B never had are gone')
      assert.ok(fs.readFileSync(side.disk).subarray(3 << 20, (3 << 20) + img.length).equals(img))
    }
  } finally {
    if (process.env.PAIR_DEBUG) console.log(priA?.err, secB?.err, priB?.err, secA?.err)
    await stopQuietly([priA, priB, secA, secB], [a.mnt, b.mnt])
  }
}))

test.run()
