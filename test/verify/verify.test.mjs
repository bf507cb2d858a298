// timeout: 150
// Online verify finds what was changed behind the secondary's back (a
// flipped byte in a file and in an image, a deleted file, a mode, an
// xattr, a broken hard link), --repair resends exactly that through the
// journal, and a second verify is clean (exit 0).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { bounded, cli } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, differences, waitSynced, status } from '../helpers/pair.mjs'

const port = 17600
const imageSize = 4 << 20

const verify = (L, ...flags) => cli(['verify', '--state', L.pstate, '--json', ...flags], { timeoutMs: 60_000 })
const report = r => { try { return JSON.parse(r.out) } catch { throw new Error(`verify printed no JSON (exit ${r.code}): ${r.out}\n${r.err}`) } }

function flipByte (file, off) {
  const fd = fs.openSync(file, 'r+')
  const b = Buffer.alloc(1)
  fs.readSync(fd, b, 0, 1, off)
  b[0] ^= 0xff
  fs.writeSync(fd, b, 0, 1, off)
  fs.closeSync(fd)
}

test('verify finds corruption of the copy; --repair fixes it; verify again is clean', bounded(140_000, async () => {
  const L = layout('verify-fix', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port))
    const m = n => join(L.mnt, 'one', n)
    fs.mkdirSync(m('dir/sub'), { recursive: true })
    fs.writeFileSync(m('big'), Buffer.alloc(3 << 20, 7))
    fs.writeFileSync(m('dir/gone'), 'this file will be deleted on the secondary')
    fs.writeFileSync(m('dir/sub/mode'), 'mode')
    fs.writeFileSync(m('attrs'), 'x')
    execFileSync('setfattr', ['-n', 'user.color', '-v', 'blue', m('attrs')])
    fs.writeFileSync(m('linked'), 'one inode, two names')
    fs.linkSync(m('linked'), m('dir/linked2'))
    fs.symlinkSync('big', m('sym'))
    const img = fs.openSync(join(L.mnt, 'disk'), 'r+')
    fs.writeSync(img, Buffer.alloc(1 << 20, 9), 0, 1 << 20, 1 << 20)
    fs.closeSync(img)
    await waitSynced(L)

    let r = await verify(L)
    assert.equal(r.code, 0, `a synced pair verifies clean: ${r.out}${r.err}`)
    assert.equal(report(r).found.length, 0)
    r = await cli(['verify', '--state', L.sstate])
    assert.equal(r.code, 2)
    assert.match(r.err, /the daemon of .* is not a primary: run verify with the primary's state directory/)
    r = await cli(['verify', '--state', L.pstate, '--block-size', '100'])
    assert.equal(r.code, 2)
    assert.match(r.err, /--block-size must be a whole number of bytes in 512\.\.16777216/)

    // Behind the secondary's back.
    const s = n => join(L.s.one, n)
    flipByte(s('big'), 2 * 1024 * 1024 + 100)
    fs.unlinkSync(s('dir/gone'))
    fs.chmodSync(s('dir/sub/mode'), 0o600)
    execFileSync('setfattr', ['-n', 'user.color', '-v', 'red', s('attrs')])
    execFileSync('setfattr', ['-n', 'user.extra', '-v', '1', s('attrs')])
    fs.unlinkSync(s('dir/linked2'))
    fs.copyFileSync(s('linked'), s('dir/linked2')) // same content, no longer the same inode
    flipByte(L.s.disk, 3 * 1024 * 1024 + 5)

    r = await verify(L)
    assert.equal(r.code, 1, `divergent: exit 1: ${r.out}${r.err}`)
    const found = report(r).found
    const has = (kind, path, vol = 'one') => found.find(x => x.kind === kind && x.path === path && x.volume === vol)
    const big = has('data', 'big')
    assert.ok(big, JSON.stringify(found))
    assert.equal(big.ranges, [[2 << 20, (2 << 20) + 65536]], 'the 64 KiB block holding the flipped byte')
    assert.ok(has('missing', 'dir/gone'), JSON.stringify(found))
    assert.match(has('mode', 'dir/sub/mode').detail, /primary 0644, secondary 0600/)
    const x = has('xattr', 'attrs')
    assert.ok(x, JSON.stringify(found))
    assert.match(x.detail, /values differ: user.color/)
    assert.match(x.detail, /only on the secondary: user.extra/)
    assert.ok(found.some(f => f.kind === 'links'), `hard-link structure: ${JSON.stringify(found)}`)
    const d = has('data', '', 'disk')
    assert.equal(d?.ranges, [[3 << 20, (3 << 20) + 65536]], JSON.stringify(found))
    assert.not.ok(found.some(f => f.path === 'sym' || f.path === 'dir/sub'), 'nothing else')

    const human = await cli(['verify', '--state', L.pstate], { timeoutMs: 60_000 })
    assert.equal(human.code, 1)
    assert.match(human.out, /one:big: data differs in bytes 2097152-2162687/)
    assert.match(human.out.trim().split('\n').pop(), /^verify: DIVERGENT: \d+ mismatches/)

    r = await verify(L, '--repair')
    assert.equal(r.code, 0, `repaired: ${r.out}${r.err}`)
    const rep = report(r)
    assert.ok(rep.repaired && rep.found.length >= 6 && rep.remaining.length === 0, JSON.stringify(rep))

    r = await verify(L)
    assert.equal(r.code, 0, `clean after the repair: ${r.out}${r.err}`)
    await waitSynced(L)
    assert.equal(differences(L), null)
    assert.equal(fs.statSync(s('linked')).ino, fs.statSync(s('dir/linked2')).ino, 'the hard link is back')
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('entries: type, owner, symlink target, extra tree, hard links lost in a directory restated whole; repair in rounds; no peer: exit 2', bounded(100_000, async () => {
  const L = layout('verify-entries', { vols: ['one'] })
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port + 1))
    const m = n => join(L.mnt, 'one', n)
    fs.mkdirSync(m('dir'))
    fs.writeFileSync(m('a'), 'aaaa')
    fs.linkSync(m('a'), m('dir/a2'))
    fs.writeFileSync(m('b'), 'bbbb')
    fs.symlinkSync('a', m('s'))
    await waitSynced(L)
    const s = n => join(L.s.one, n)
    fs.chownSync(s('b'), 1000, 1000)
    fs.unlinkSync(s('s'))
    fs.symlinkSync('elsewhere', s('s'))
    fs.mkdirSync(s('extra/deep'), { recursive: true })
    fs.rmSync(s('dir'), { recursive: true })
    fs.writeFileSync(s('dir'), 'a file where the primary has a directory')

    let r = await verify(L)
    assert.equal(r.code, 1, r.out + r.err)
    const kinds = report(r).found.map(f => `${f.path} ${f.kind}`)
    assert.equal(kinds, ['a links', 'b owner', 'dir type', 'extra extra', 's target'])
    assert.match(report(r).found[1].detail, /primary 0:0, secondary 1000:1000/)
    assert.match(report(r).found[4].detail, /primary -> "a", secondary -> "elsewhere"/)

    // Restating `dir` whole brings dir/a2 back as a file of its own; the
    // next round's link check finds that and links it again.
    r = await verify(L, '--repair')
    assert.equal(r.code, 0, r.out + r.err)
    r = await verify(L)
    assert.equal(r.code, 0, r.out + r.err)
    await waitSynced(L)
    assert.equal(differences(L), null)
    assert.equal(fs.statSync(s('a')).ino, fs.statSync(s('dir/a2')).ino)
    assert.not.ok(fs.existsSync(s('extra')))

    await sec.stop()
    r = await cli(['verify', '--state', L.pstate])
    assert.equal(r.code, 2, r.out + r.err)
    assert.match(r.err, /verify could not run: PEER_ERROR: the secondary is not streaming/)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('the link to the secondary lost during a pass: exit 2, and the next pass is clean', bounded(100_000, async () => {
  const L = layout('verify-lost', { vols: ['one'], image: { name: 'disk', size: imageSize } })
  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port + 2))
    // A stopped secondary answers nothing; the primary's heartbeat drops
    // the connection after its dead-peer time, which ends the pass.
    sec.proc.kill('SIGSTOP')
    let r
    try { r = await verify(L) } finally { sec.proc.kill('SIGCONT') }
    assert.equal(r.code, 2, r.out + r.err)
    assert.match(r.err, /verify could not run: PEER_ERROR: the connection to the secondary ended during the verify/)
    assert.equal(JSON.parse(r.out).error.includes('connection to the secondary ended'), true)
    await waitSynced(L)
    r = await verify(L)
    assert.equal(r.code, 0, r.out + r.err)
    assert.match((await status(L.pstate)).verify.last.summary, /^verify: clean/)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('verify without a running primary, or on a secondary, cannot run: exit 2', bounded(60_000, async () => {
  const L = layout('verify-norun', { vols: ['one'] })
  const r = await cli(['verify', '--state', L.pstate])
  assert.equal(r.code, 2, r.err)
  assert.match(r.err, /verify could not run: USAGE: no replfs daemon is running/)
}))

test.run()
