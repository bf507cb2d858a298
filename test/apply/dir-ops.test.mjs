// Directory volume: each record kind does what the primary's POSIX call did,
// and a batch applied twice (replay after a crash of the secondary) leaves
// the same tree as applied once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { applyRecord, applyBatch } from '../../dist/apply/apply.js'
import { makeEnv, rejects, bytes, snapshot, DIR } from './env.mjs'

let env
const p = (rel) => path.join(env.root, rel)
const apply = (r) => applyRecord(env.vols, { vol: DIR, ...r })
const applyAll = (records, seq = 1) => applyBatch(env.vols, { seq, records: records.map(r => ({ vol: DIR, ...r })) })
const perm = (rel) => fs.lstatSync(p(rel)).mode & 0o7777

test.before.each(async () => { env = await makeEnv() })
test.after.each(async () => { env.assertOutsideUntouched(); await env.cleanup() })

test('create and mkdir give exactly the recorded mode, whatever our umask', async () => {
  const old = process.umask(0o077)
  try {
    await apply({ kind: 'create', path: 'f', mode: 0o100664 }) // type bits as FUSE passes them
    await apply({ kind: 'mkdir', path: 'd', mode: 0o775 })
    await apply({ kind: 'mknod', path: 'd/p', mode: 0o010666, rdev: 0 })
    await apply({ kind: 'mknod', path: 'd/r', mode: 0o100604, rdev: 0 })
  } finally { process.umask(old) }
  assert.is(perm('f'), 0o664)
  assert.is(perm('d'), 0o775)
  assert.ok(fs.lstatSync(p('d/p')).isFIFO())
  assert.is(perm('d/p'), 0o666)
  assert.ok(fs.lstatSync(p('d/r')).isFile())
  assert.is(perm('d/r'), 0o604)
})

test('write creates nothing: a missing file is APPLY_FAILED naming volume, kind, path and errno', async () => {
  await rejects(apply({ kind: 'write', path: 'nope', off: 0, data: bytes('x') }), 'APPLY_FAILED', /volume data \(0\): write "nope" failed: ENOENT/)
  await rejects(apply({ kind: 'truncate', path: 'nope', size: 0 }), 'APPLY_FAILED', /truncate "nope".*ENOENT/)
  await rejects(apply({ kind: 'chmod', path: 'nope', mode: 0o600 }), 'APPLY_FAILED', /ENOENT/)
  assert.equal(fs.readdirSync(env.root), [])
})

test('rename replaces files, moves directories; link shares the inode; truncate and unlink', async () => {
  await applyAll([
    { kind: 'create', path: 'a', mode: 0o644 },
    { kind: 'write', path: 'a', off: 0, data: bytes('AAAA') },
    { kind: 'create', path: 'b', mode: 0o644 },
    { kind: 'write', path: 'b', off: 0, data: bytes('B') },
    { kind: 'rename', path: 'a', to: 'b' },
    { kind: 'mkdir', path: 'd', mode: 0o755 },
    { kind: 'mkdir', path: 'e', mode: 0o755 },
    { kind: 'create', path: 'd/x', mode: 0o644 },
    { kind: 'rename', path: 'd', to: 'e' }, // onto an empty directory
    { kind: 'link', path: 'b', to: 'e/b2' },
    { kind: 'truncate', path: 'e/b2', size: 2 },
    { kind: 'unlink', path: 'e/x' }
  ])
  assert.equal(fs.readdirSync(env.root).sort(), ['b', 'e'])
  assert.is(fs.readFileSync(p('b'), 'utf8'), 'AA')
  assert.is(fs.statSync(p('b')).ino, fs.statSync(p('e/b2')).ino)
  assert.equal(fs.readdirSync(p('e')), ['b2'])
})

test('a symlink target is data: stored verbatim, never confined nor followed', async () => {
  await apply({ kind: 'symlink', path: 's', target: '../outside/secret' })
  await apply({ kind: 'symlink', path: 't', target: '/etc/passwd' })
  assert.is(fs.readlinkSync(p('s')), '../outside/secret')
  assert.is(fs.readlinkSync(p('t')), '/etc/passwd')
  await apply({ kind: 'chown', path: 's', uid: 4321, gid: 4321 }) // lchown: the link itself
  assert.is(fs.lstatSync(p('s')).uid, 4321)
  await apply({ kind: 'utimens', path: 's', atimeMs: 1e12, mtimeMs: 1e12 }) // lutimes
  assert.is(fs.lstatSync(p('s')).mtimeMs, 1e12)
})

test('chmod, chown, utimens with millisecond times, xattrs', async () => {
  await applyAll([
    { kind: 'create', path: 'f', mode: 0o644 },
    { kind: 'chown', path: 'f', uid: 1234, gid: 5678 }, // before chmod: chown clears setuid, as on the primary
    { kind: 'chmod', path: 'f', mode: 0o4750 },
    { kind: 'utimens', path: 'f', atimeMs: 1700000000123, mtimeMs: 1600000000456 },
    { kind: 'setxattr', path: 'f', name: 'user.a', value: bytes('one'), flags: 0 },
    { kind: 'setxattr', path: 'f', name: 'user.b', value: new Uint8Array([0, 255, 0]), flags: 1 },
    { kind: 'setxattr', path: 'f', name: 'user.a', value: bytes('two'), flags: 2 },
    { kind: 'removexattr', path: 'f', name: 'user.b' }
  ])
  const st = fs.lstatSync(p('f'))
  assert.is(st.mode & 0o7777, 0o4750)
  assert.is(st.uid, 1234)
  assert.is(st.gid, 5678)
  assert.is(st.atimeMs, 1700000000123)
  assert.is(st.mtimeMs, 1600000000456)
  const v = env.vols.get(DIR)
  assert.is((await v.getxattr('f', 'user.a')).toString(), 'two')
  assert.is(await v.getxattr('f', 'user.b'), null)
})

// Replay after a crash re-applies a batch that may be wholly or partly
// applied. Each record here meets its own effect the second time round.
const replayable = [
  { kind: 'mkdir', path: 'd', mode: 0o750 },
  { kind: 'create', path: 'd/f', mode: 0o640 },
  { kind: 'write', path: 'd/f', off: 0, data: bytes('hello world') },
  { kind: 'truncate', path: 'd/f', size: 5 },
  { kind: 'symlink', path: 'd/s', target: 'f' },
  { kind: 'link', path: 'd/f', to: 'd/hard' },
  { kind: 'create', path: 'd/tmp', mode: 0o600 },
  { kind: 'write', path: 'd/tmp', off: 0, data: bytes('new') },
  { kind: 'rename', path: 'd/tmp', to: 'd/final' },
  { kind: 'mkdir', path: 'gone', mode: 0o755 },
  { kind: 'rmdir', path: 'gone' },
  { kind: 'create', path: 'x', mode: 0o644 },
  { kind: 'unlink', path: 'x' },
  { kind: 'mknod', path: 'd/fifo', mode: 0o010600, rdev: 0 },
  { kind: 'setxattr', path: 'd/f', name: 'user.t', value: bytes('1'), flags: 1 },
  { kind: 'setxattr', path: 'd/f', name: 'user.gone', value: bytes('1'), flags: 0 },
  { kind: 'removexattr', path: 'd/f', name: 'user.gone' },
  { kind: 'chmod', path: 'd', mode: 0o755 },
  { kind: 'fsync', path: 'd/f' }
]

test('a batch applied twice leaves the tree it left once', async () => {
  await applyAll(replayable)
  const once = snapshot(env.root)
  assert.is(fs.readFileSync(p('d/final'), 'utf8'), 'new')
  await applyAll(replayable)
  assert.equal(snapshot(env.root), once)
})

test('every prefix of a batch, then the whole batch, ends in the same tree', async () => {
  await applyAll(replayable)
  const want = snapshot(env.root)
  for (let cut = 0; cut < replayable.length; cut++) {
    fs.rmSync(env.root, { recursive: true }); fs.mkdirSync(env.root)
    await applyAll(replayable.slice(0, cut)) // the crash came after `cut` records
    await applyAll(replayable)
    assert.equal(snapshot(env.root), want, `crash after ${cut} records`)
  }
})

test('replay tolerance is narrow: a name that exists as something else is still an error', async () => {
  await apply({ kind: 'mkdir', path: 'd', mode: 0o755 })
  await rejects(apply({ kind: 'create', path: 'd', mode: 0o644 }), 'APPLY_FAILED', /EEXIST/)
  await apply({ kind: 'create', path: 'f', mode: 0o644 })
  await rejects(apply({ kind: 'mkdir', path: 'f', mode: 0o755 }), 'APPLY_FAILED', /EEXIST/)
  await rejects(apply({ kind: 'symlink', path: 'f', target: 'x' }), 'APPLY_FAILED', /EEXIST/)
  await apply({ kind: 'symlink', path: 's', target: 'a' })
  await rejects(apply({ kind: 'symlink', path: 's', target: 'b' }), 'APPLY_FAILED', /EEXIST/)
  await apply({ kind: 'create', path: 'g', mode: 0o644 })
  await rejects(apply({ kind: 'link', path: 'f', to: 'g' }), 'APPLY_FAILED', /EEXIST/) // other inode
  await rejects(apply({ kind: 'rename', path: 'none', to: 'none2' }), 'APPLY_FAILED', /ENOENT/) // neither exists
})

test('state: absent, dir, symlink and file replace whatever is there', async () => {
  const st = { kind: 'state', uid: 0, gid: 0, size: 0, target: '', whole: false }
  await applyAll([
    { kind: 'mkdir', path: 't', mode: 0o755 },
    { kind: 'symlink', path: 't/out', target: '../../outside' }, // rm must not follow it
    { kind: 'create', path: 't/f', mode: 0o644 },
    { kind: 'create', path: 'file', mode: 0o644 },
    { kind: 'mkdir', path: 'dir', mode: 0o755 },
    { kind: 'symlink', path: 'link', target: '../outside/secret' }
  ])
  await applyAll([
    { ...st, path: 't', type: 'absent', mode: 0 },
    { ...st, path: 'missing', type: 'absent', mode: 0 },
    { ...st, path: 'file', type: 'dir', mode: 0o700, uid: 11, gid: 12 },
    { ...st, path: 'dir', type: 'symlink', mode: 0o777, target: 'file' },
    { ...st, path: 'link', type: 'file', mode: 0o600, size: 7 }, // not written through
    { ...st, path: '', type: 'dir', mode: 0o711 }
  ])
  assert.equal(fs.readdirSync(env.root).sort(), ['dir', 'file', 'link'])
  assert.ok(fs.lstatSync(p('file')).isDirectory())
  assert.is(perm('file'), 0o700)
  assert.is(fs.lstatSync(p('file')).uid, 11)
  assert.is(fs.readlinkSync(p('dir')), 'file')
  assert.ok(fs.lstatSync(p('link')).isFile())
  assert.is(fs.lstatSync(p('link')).size, 7)
  assert.is(perm(''), 0o711)
  await rejects(apply({ ...st, path: '', type: 'absent', mode: 0 }), 'BAD_RECORD', /root/)
  await rejects(apply({ kind: 'rmdir', path: '' }), 'BAD_RECORD', /root/)
})

test.run()
