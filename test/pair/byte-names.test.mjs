// timeout: 180
// File names are bytes end to end (issue 7): names that are not valid
// UTF-8 are captured by the core, journalled as byte strings, applied on the
// secondary and resynced under exactly their bytes. 255 x \x80 is a 255-byte
// name (not 765 bytes of U+FFFD: ENAMETOOLONG), y\xe8 and y\xe9 are two
// files (not one name twice: EEXIST). The initial sync walks such names on
// both sides; operations through the mount follow; the replica is compared
// with the primary's backing store, names as bytes; then a kill -9 of the
// primary, whose recovery restates such names from its activity log.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { bounded, unstick } from '../helpers/mount.mjs'
import { layout, startPair, startPrimary, waitSynced, stopAll } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { nativeCore } from '../../dist/native/addon.js'

const port = 17711
const b = (...parts) => Buffer.concat(parts.map(p => Buffer.from(p)))
const under = (dir, ...names) => Buffer.concat([Buffer.from(dir), ...names.flatMap(n => [Buffer.from('/'), Buffer.from(n)])])
const n80 = Buffer.alloc(255, 0x80)
const ye8 = b('y', [0xe8])
const ye9 = b('y', [0xe9])
const dir = b('d', [0xff, 0xfe], 'é')

test('names that are not UTF-8: initial sync and operations through the mount replicate exactly', bounded(150_000, async () => {
  const L = layout('pair-bytes', { vols: ['v'] })
  // Before the pair starts: byte names on the primary, and one only the
  // secondary has (the initial sync removes it).
  fs.mkdirSync(under(L.p.v, dir))
  fs.writeFileSync(under(L.p.v, dir, ye8), 'early e8')
  fs.writeFileSync(under(L.p.v, dir, ye9), 'early e9')
  fs.symlinkSync(ye8, under(L.p.v, b('link', [0xe8])))
  nativeCore().xattrSet(under(L.p.v, dir, ye9), 'user.early', Buffer.from('x'))
  fs.writeFileSync(under(L.s.v, b('stale', [0xfa])), 'only on the secondary')
  let { sec, pri } = await startPair(L, port)
  try {
    assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }), 'after the initial sync')
    const m = `${L.mnt}/v`
    fs.writeFileSync(under(m, n80), 'a 255-byte name')
    fs.chmodSync(under(m, n80), 0o640)
    fs.writeFileSync(under(m, ye8), 'e8')
    fs.writeFileSync(under(m, ye9), 'e9')
    fs.mkdirSync(under(m, b('sub', [0x80])))
    fs.renameSync(under(m, dir, ye8), under(m, b('sub', [0x80]), b('moved', [0xc3])))
    fs.linkSync(under(m, ye9), under(m, b('sub', [0x80]), b('hard', [0xe9])))
    fs.symlinkSync(b('target', [0xff]), under(m, b('sym', [0xfe])))
    fs.writeFileSync(under(m, b('gone', [0xf0])), 'x'); fs.unlinkSync(under(m, b('gone', [0xf0])))
    fs.mkdirSync(under(m, b('rm', [0xf1]))); fs.rmdirSync(under(m, b('rm', [0xf1])))
    fs.utimesSync(under(m, ye8), 1000, 2000)
    nativeCore().xattrSet(under(m, ye9), 'user.k', Buffer.from([0, 255, 128])) // lsetxattr, the path as bytes
    assert.equal(fs.readdirSync(m, { encoding: 'buffer' }).filter(n => n[0] === 0x79).map(n => n.toString('hex')).sort(), [ye8, ye9].map(x => x.toString('hex')))
    await waitSynced(L, 60_000)
    assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }), 'after the operations')
    assert.is(fs.readFileSync(under(L.s.v, n80), 'utf8'), 'a 255-byte name')
    assert.is(fs.readFileSync(under(L.s.v, b('sub', [0x80]), b('moved', [0xc3])), 'utf8'), 'early e8')
    assert.ok(fs.readlinkSync(under(L.s.v, b('sym', [0xfe])), { encoding: 'buffer' }).equals(b('target', [0xff])))

    // kill -9 of the primary: its activity log holds these names (as bytes);
    // the restart restates them from the backing store.
    fs.writeFileSync(under(m, b('late', [0xe8])), 'written just before the kill')
    fs.renameSync(under(m, ye9), under(m, b('y', [0xe9], 'renamed')))
    await pri.kill9()
    unstick(L.mnt)
    pri = await startPrimary(L, port)
    assert.match(pri.err, /recovery: \d+ hot parts left by an unclean stop re-journalled/)
    await waitSynced(L, 60_000)
    assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }), 'after kill -9 and recovery')
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
