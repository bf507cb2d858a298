// timeout: 240
// Failover and failback: writes on one side, a switchover (demote the
// primary, promote the secondary), writes on the other side, and back.
// Each swap resumes the journal from the common point: the copies end
// identical with the expected content, and the bytes sent are what was
// written, never a copy of the volumes. Promote while the old primary is
// connected is refused without --force.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { bounded, cli } from '../helpers/mount.mjs'
import { layout, differences, status } from '../helpers/pair.mjs'
import { sides, serveOn, mountOn, waitPair, stopQuietly } from './roles.mjs'

const portB = 17650
const portA = 17651
const imageSize = 16 << 20

function writeImage (mnt, off, data) {
  const fd = fs.openSync(join(mnt, 'disk'), 'r+')
  try { fs.writeSync(fd, data, 0, data.length, off) } finally { fs.closeSync(fd) }
}

test('failover and failback with writes on each side: no full resync, identical copies', bounded(220_000, async () => {
  const L = layout('roles-failover', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  const { a, b } = sides(L)
  let priA, secB, priB, secA
  try {
    // 1. A primary, B secondary: an initial sync, then writes on A.
    secB = await serveOn(L, b, portB)
    priA = await mountOn(L, a, portB)
    const base = randomBytes(300 << 10)
    fs.writeFileSync(join(a.mnt, 'one', 'base.bin'), base)
    fs.mkdirSync(join(a.mnt, 'one', 'dir'))
    fs.writeFileSync(join(a.mnt, 'one', 'dir', 'a.txt'), 'written on A\n')
    const imgA = randomBytes(256 << 10)
    writeImage(a.mnt, 1 << 20, imgA)
    await waitPair(a.state, b.state)

    // 2. Promote B with A connected: refused, B keeps serving.
    const refused = await cli(['promote', '--state', b.state])
    assert.is(refused.code, 1, refused.err)
    assert.match(refused.err, /BUSY: the old primary is connected to this secondary/)
    assert.match(refused.err, /--force only when it is unreachable/)
    assert.is((await status(b.state)).role, 'secondary')
    assert.is(secB.exited, null, 'the secondary still runs')

    // 3. Switchover to B: demote A (drains, unmounts), promote B.
    const dem = await cli(['demote', '--state', a.state])
    assert.is(dem.code, 0, dem.err)
    assert.match(dem.out, /demoted: .* is a secondary at sequence \d+/)
    assert.is((await priA.waitExit()).code, 0, priA.err)
    assert.match(priA.err, /drained: the secondary acknowledged every sequence/)
    const pro = await cli(['promote', '--state', b.state])
    assert.is(pro.code, 0, pro.err)
    assert.match(pro.out, /promoted: .* is a primary from sequence \d+, data generation [0-9a-f]{16}/)
    assert.is((await secB.waitExit()).code, 0, secB.err)

    // 4. B primary, A secondary: the journal resumes, then writes on B.
    secA = await serveOn(L, a, portA)
    priB = await mountOn(L, b, portA)
    await waitPair(b.state, a.state)
    assert.match(priB.err, /pair decision: resume the journal: in sync at common point sequence \d+ in generation [0-9a-f]+, chain hashes agree/)
    const mid = Buffer.from('changed on B')
    const fd = fs.openSync(join(b.mnt, 'one', 'base.bin'), 'r+')
    fs.writeSync(fd, mid, 0, mid.length, 1000)
    fs.closeSync(fd)
    fs.writeFileSync(join(b.mnt, 'one', 'dir', 'b.txt'), 'written on B\n')
    fs.unlinkSync(join(b.mnt, 'one', 'dir', 'a.txt'))
    const imgB = randomBytes(64 << 10)
    writeImage(b.mnt, 8 << 20, imgB)
    const { p: pB } = await waitPair(b.state, a.state)
    assert.equal(differences(L), null, 'after writes on B')
    assert.ok(pB.sentBytes < 512 << 10, `B sent ${pB.sentBytes} bytes for ~70 KiB written (volume ${imageSize})`)
    assert.not.match(priB.err, /full resync|resync of the secondary starts/)

    // 5. Failback: demote B, promote A; writes on A.
    const dem2 = await cli(['demote', '--state', b.state])
    assert.is(dem2.code, 0, dem2.err)
    assert.is((await priB.waitExit()).code, 0, priB.err)
    const pro2 = await cli(['promote', '--state', a.state])
    assert.is(pro2.code, 0, pro2.err)
    assert.is((await secA.waitExit()).code, 0, secA.err)
    secB = await serveOn(L, b, portB)
    priA = await mountOn(L, a, portB)
    await waitPair(a.state, b.state)
    assert.match(priA.err, /pair decision: resume the journal: in sync at common point/)
    fs.writeFileSync(join(a.mnt, 'one', 'dir', 'c.txt'), 'written on A again\n')
    const { p: pA } = await waitPair(a.state, b.state)
    assert.ok(pA.sentBytes < 64 << 10, `A sent ${pA.sentBytes} bytes after the failback`)
    assert.not.match(priA.err, /resync of the secondary starts/)
    assert.equal(differences(L), null, 'after the failback')
    const v = await cli(['verify', '--state', a.state])
    assert.is(v.code, 0, `online verify after the failback: ${v.out}${v.err}`)

    // The content each side wrote, on both sides.
    for (const side of [L.p, L.s]) {
      const got = fs.readFileSync(join(side.one, 'base.bin'))
      assert.ok(got.subarray(1000, 1000 + mid.length).equals(mid) && got.subarray(0, 1000).equals(base.subarray(0, 1000)), 'base.bin')
      assert.not.ok(fs.existsSync(join(side.one, 'dir', 'a.txt')), 'a.txt removed on B')
      assert.is(fs.readFileSync(join(side.one, 'dir', 'b.txt'), 'utf8'), 'written on B\n')
      assert.is(fs.readFileSync(join(side.one, 'dir', 'c.txt'), 'utf8'), 'written on A again\n')
      const img = fs.readFileSync(side.disk)
      assert.ok(img.subarray(1 << 20, (1 << 20) + imgA.length).equals(imgA) && img.subarray(8 << 20, (8 << 20) + imgB.length).equals(imgB), 'image ranges')
    }
  } finally {
    if (process.env.PAIR_DEBUG) console.log(priA?.err, secB?.err, priB?.err, secA?.err)
    await stopQuietly([priA, priB, secA, secB], [a.mnt, b.mnt])
  }
}))

test.run()
