// timeout: 200
// Fast failback after an unclean stop (replicate/restated.ts). The old
// primary dies (kill -9) while connected; the secondary is promoted and
// written; the old primary is demoted (its recovery re-journals the parts
// the activity log held hot) and serves the new primary:
//  - its writes the new primary never got are rolled back from the new
//    primary's data, saved in STATE/discarded-TIME/ and reported, with no
//    split brain and no full copy; the re-journalled parts the new primary
//    holds as they are are not reported;
//  - when everything had reached the secondary, the recovery's restate is
//    dropped (nothing rolled back, nothing saved) and the journal resumes.
// Ports 18210-18219.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { bounded, cli, unstick } from '../helpers/mount.mjs'
import { layout, differences, status, waitFor, sleep } from '../helpers/pair.mjs'
import { sides, serveOn, mountOn, waitPair, stopQuietly } from './roles.mjs'

const imageSize = 16 << 20

function writeAt (path, off, data) {
  const fd = fs.openSync(path, 'r+')
  try { fs.writeSync(fd, data, 0, data.length, off) } finally { fs.closeSync(fd) }
}

/** Forwards listenPort to targetPort; `hole()` drops everything from then
 *  on, both ways, and keeps the secondary's side open when the primary's
 *  goes (a link that went silent, not one that closed). */
async function blackhole (listenPort, targetPort) {
  const pairs = new Set()
  let hole = false
  const server = net.createServer(c => {
    const s = net.connect(targetPort, '127.0.0.1')
    const p = { c, s }
    pairs.add(p)
    const end = () => { if (!hole) { c.destroy(); s.destroy() } else c.destroy() }
    c.on('error', end); s.on('error', () => { c.destroy(); s.destroy() }); c.on('close', end); s.on('close', () => c.destroy())
    c.on('data', d => { if (!hole) s.write(d) })
    s.on('data', d => { if (!hole) c.write(d) })
  })
  await new Promise(resolve => server.listen(listenPort, '127.0.0.1', resolve))
  return {
    hole: () => { hole = true },
    close: () => { for (const p of pairs) { p.c.destroy(); p.s.destroy() } server.close() }
  }
}

const discardedDirs = state => fs.readdirSync(state).filter(n => n.startsWith('discarded-'))

test('kill -9 with unshipped writes, promote --force, demote: rolled back, saved, reported; only differing parts move', bounded(150_000, async () => {
  const L = layout('roles-failback', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  const { a, b } = sides(L)
  const [portB, portProxy, portA] = [18210, 18211, 18212]
  let priA, secB, priB, secA, proxy
  try {
    secB = await serveOn(L, b, portB)
    proxy = await blackhole(portProxy, portB)
    priA = await mountOn(L, a, portProxy)
    const before = randomBytes(200 << 10)
    fs.writeFileSync(join(a.mnt, 'one', 'before.bin'), before)
    // Parts written and shipped: the activity log keeps them as idle marks,
    // so the recovery re-journals them too (what the new primary holds).
    for (let i = 0; i < 10; i++) fs.writeFileSync(join(a.mnt, 'one', `warm-${i}.txt`), `shipped ${i}\n`)
    for (let i = 0; i < 4; i++) writeAt(join(a.mnt, 'disk'), i * (2 << 20), randomBytes(8 << 10))
    await waitPair(a.state, b.state)

    // The link goes silent (nothing more reaches B, and B still counts A as
    // connected); A writes what B never gets, then dies.
    proxy.hole()
    for (let i = 0; i < 20; i++) fs.writeFileSync(join(a.mnt, 'one', `lost-${i}.txt`), `unshipped ${i}\n`)
    writeAt(join(a.mnt, 'one', 'before.bin'), 4096, Buffer.from('overwritten on A, never shipped'))
    const lostImg = randomBytes(32 << 10)
    writeAt(join(a.mnt, 'disk'), 5 << 20, lostImg)
    await sleep(300) // group commit: the batches are in A's journal
    await priA.kill9()
    unstick(a.mnt)

    // Failover: refused while B counts A as connected, then forced.
    const refused = await cli(['promote', '--state', b.state])
    assert.is(refused.code, 1, 'promote without --force while the old primary is connected')
    assert.match(refused.err, /BUSY/)
    const pro = await cli(['promote', '--state', b.state, '--force'])
    assert.is(pro.code, 0, pro.err)
    proxy.close()
    priB = await mountOn(L, b, portA)
    fs.writeFileSync(join(b.mnt, 'one', 'after.txt'), 'written on B after the failover\n')
    const img = randomBytes(16 << 10)
    writeAt(join(b.mnt, 'disk'), 3 << 20, img)

    // A comes back: demoted (the recovery of its unclean stop runs there), it
    // says what was unshipped; then it serves B.
    const dem = await cli(['demote', '--state', a.state])
    assert.is(dem.code, 0, dem.err)
    assert.match(dem.err, /recovery: \d+ hot parts left by an unclean stop re-journalled/)
    assert.match(dem.out, /unshipped: the secondary had not acknowledged sequences \d+\.\.\d+/)
    assert.match(dem.out, /one\/lost-19\.txt/)
    secA = await serveOn(L, a, portA)
    const { p } = await waitPair(b.state, a.state)
    assert.match(priB.err, /pair decision: roll back the secondary's own writes: the secondary was demoted/)
    assert.match(priB.err, /pair decision: resync the rolled back paths/)
    assert.not.match(priB.err + secA.err, /SPLIT_BRAIN/)
    assert.match(secA.err, /failback: this side was demoted .*rolled back from the primary's data/)
    assert.match(secA.err, /rolled back \d+ bytes written in \d+ files/)
    assert.is((await status(a.state)).splitBrain, null)

    // Saved and reported as resolve --discard-local does.
    const [saved] = discardedDirs(a.state)
    assert.ok(saved, 'a discarded-TIME directory')
    const report = JSON.parse(fs.readFileSync(join(a.state, saved, 'report.json'), 'utf8'))
    const paths = report.rolledBack.files.map(f => `${f.vol}/${f.path}`)
    for (let i = 0; i < 20; i++) {
      assert.ok(paths.includes(`one/lost-${i}.txt`), `lost-${i}.txt reported: ${paths}`)
      assert.is(fs.readFileSync(join(a.state, saved, 'files', 'one', `lost-${i}.txt`), 'utf8'), `unshipped ${i}\n`)
    }
    assert.ok(paths.includes('one/before.bin') && paths.includes('disk/'), `the overwrite and the image range reported: ${paths}`)
    assert.ok(!paths.some(x => /warm-/.test(x)), `re-journalled parts B holds as they are are not reported: ${paths}`)
    const imgSaved = fs.readdirSync(join(a.state, saved, 'files', 'disk'))
    assert.ok(imgSaved.some(n => fs.readFileSync(join(a.state, saved, 'files', 'disk', n)).includes(lostImg.subarray(0, 4096))), `the image range saved: ${imgSaved}`)
    assert.ok(fs.readdirSync(join(a.state, saved, 'journal')).some(n => n.endsWith('.seg')))

    // Identical copies with B's data, and only the differing parts moved.
    assert.equal(differences(L), null)
    assert.ok(p.sentBytes < 1 << 20, `B sent ${p.sentBytes} bytes (volume ${imageSize} + 200 KiB)`)
    for (const side of [L.p, L.s]) {
      assert.ok(fs.readFileSync(join(side.one, 'before.bin')).equals(before), 'before.bin rolled back')
      assert.ok(!fs.existsSync(join(side.one, 'lost-0.txt')))
      assert.is(fs.readFileSync(join(side.one, 'after.txt'), 'utf8'), 'written on B after the failover\n')
      assert.ok(fs.readFileSync(side.disk).subarray(3 << 20, (3 << 20) + img.length).equals(img))
    }
    if (process.env.PAIR_DEBUG) console.log(JSON.stringify(report.rolledBack.files.map(f => [f.path, f.ops, f.bytesWritten, f.ranges])))
    console.log(`  failback after kill -9: B sent ${p.sentBytes} bytes; rolled back ${report.rolledBack.bytesWritten} bytes in ${report.rolledBack.files.length} files`)

    // And the roles swap back by demote + promote: the journal resumes, nothing is copied again.
    assert.is((await cli(['demote', '--state', b.state])).code, 0)
    await priB.waitExit()
    await secA.stop()
    assert.is((await cli(['promote', '--state', a.state])).code, 0)
    secB = await serveOn(L, b, portB)
    priA = await mountOn(L, a, portB)
    fs.writeFileSync(join(a.mnt, 'one', 'back.txt'), 'A is the primary again\n')
    const { p: back } = await waitPair(a.state, b.state)
    assert.match(priA.err, /pair decision: resume the journal/)
    assert.ok(back.sentBytes < 64 << 10, `swap back: A sent ${back.sentBytes} bytes`)
    assert.equal(differences(L), null)
  } finally {
    if (process.env.PAIR_DEBUG) console.log(priA?.err, secB?.err, priB?.err, secA?.err)
    proxy?.close()
    await stopQuietly([priA, priB, secA, secB], [a.mnt, b.mnt])
  }
}))

test('kill -9 with everything shipped: the recovery\'s restate is dropped, nothing rolled back', bounded(120_000, async () => {
  const L = layout('roles-restate', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  const { a, b } = sides(L)
  const [portB, portA] = [18213, 18214]
  let priA, secB, priB, secA
  try {
    secB = await serveOn(L, b, portB)
    priA = await mountOn(L, a, portB)
    for (let i = 0; i < 10; i++) fs.writeFileSync(join(a.mnt, 'one', `f-${i}.txt`), `shipped ${i}\n`)
    for (let i = 0; i < 4; i++) writeAt(join(a.mnt, 'disk'), i * (2 << 20), randomBytes(8 << 10))
    await waitPair(a.state, b.state)
    await priA.kill9()
    unstick(a.mnt)
    await waitFor(async () => (await status(b.state)).peerState === 'waiting', 15_000, 'B sees A gone')

    const pro = await cli(['promote', '--state', b.state])
    assert.is(pro.code, 0, pro.err)
    priB = await mountOn(L, b, portA)
    fs.writeFileSync(join(b.mnt, 'one', 'after.txt'), 'written on B\n')

    const dem = await cli(['demote', '--state', a.state])
    assert.is(dem.code, 0, dem.err)
    assert.match(dem.err, /recovery: \d+ hot parts left by an unclean stop re-journalled as [1-9]\d* records/)
    secA = await serveOn(L, a, portA)
    const { p } = await waitPair(b.state, a.state)
    assert.match(priB.err, /pair decision: drop the secondary's restate: .*its recovery of an unclean stop/)
    assert.match(priB.err, /pair decision: resume the journal/)
    assert.match(secA.err, /dropped, nothing rolled back/)
    assert.not.match(priB.err + secA.err, /SPLIT_BRAIN/)
    assert.equal(discardedDirs(a.state), [])
    assert.equal(differences(L), null)
    assert.ok(p.sentBytes < 64 << 10, `B sent ${p.sentBytes} bytes`)
  } finally {
    if (process.env.PAIR_DEBUG) console.log(priA?.err, secB?.err, priB?.err, secA?.err)
    await stopQuietly([priA, priB, secA, secB], [a.mnt, b.mnt])
  }
}))

test.run()
