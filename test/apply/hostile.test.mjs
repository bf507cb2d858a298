// Hostile records against a directory volume holding symlinks that lead out
// of it. Records come from the network: each is refused with its code, and
// the sentinel directory next to the volume stays exactly as it was.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { getAttribute } from '@napi-rs/xattr'
import { applyRecord, applyBatch } from '../../dist/apply/apply.js'
import { makeEnv, rejects, bytes, DIR, IMG, imageSize } from './env.mjs'

let env
const apply = (r) => applyRecord(env.vols, { vol: DIR, ...r })

test.before.each(async () => {
  env = await makeEnv()
  // Planted by an earlier (legitimate) symlink record: the targets are data.
  fs.symlinkSync('../outside', path.join(env.root, 'out')) // relative, to a directory outside
  fs.symlinkSync(env.outside, path.join(env.root, 'abs')) // absolute, same place
  fs.symlinkSync('../outside/secret', path.join(env.root, 'secret')) // to a file outside
  fs.symlinkSync('../outside/new', path.join(env.root, 'dangling')) // to a name outside that does not exist
  fs.mkdirSync(path.join(env.root, 'in'))
  fs.symlinkSync('out', path.join(env.root, 'in', 'hop')) // dangling inside: 'in/out' does not exist
  fs.symlinkSync('../out', path.join(env.root, 'in', 'chain')) // inside, then out
  fs.writeFileSync(path.join(env.root, 'f'), 'mine')
})
test.after.each(async () => {
  env.assertOutsideUntouched()
  await env.cleanup()
})

const through = ['out/secret', 'out/new', 'abs/secret', 'abs/new', 'in/chain/secret', 'in/chain/new']

test('every kind through a parent symlink that leads out is PATH_ESCAPE', async () => {
  for (const p of through) {
    for (const r of [
      { kind: 'write', path: p, off: 0, data: bytes('pwned') },
      { kind: 'truncate', path: p, size: 0 },
      { kind: 'create', path: p, mode: 0o777 },
      { kind: 'mkdir', path: p, mode: 0o777 },
      { kind: 'mknod', path: p, mode: 0o010666, rdev: 0 },
      { kind: 'chmod', path: p, mode: 0o777 },
      { kind: 'chown', path: p, uid: 1, gid: 1 },
      { kind: 'utimens', path: p, atimeMs: 0, mtimeMs: 0 },
      { kind: 'setxattr', path: p, name: 'user.pwned', value: bytes('1'), flags: 0 },
      { kind: 'removexattr', path: p, name: 'user.x' },
      { kind: 'unlink', path: p },
      { kind: 'rmdir', path: p },
      { kind: 'symlink', path: p, target: 'x' },
      { kind: 'fsync', path: p },
      { kind: 'state', path: p, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false },
      { kind: 'state', path: p, type: 'file', mode: 0o777, uid: 0, gid: 0, size: 9, target: '', whole: true }
    ]) {
      await rejects(apply(r), 'PATH_ESCAPE', /outside the volume/)
    }
  }
})

test('rename and link whose source or target escapes are PATH_ESCAPE', async () => {
  for (const p of through) {
    await rejects(apply({ kind: 'rename', path: 'f', to: p }), 'PATH_ESCAPE')
    await rejects(apply({ kind: 'rename', path: p, to: 'stolen' }), 'PATH_ESCAPE')
    await rejects(apply({ kind: 'link', path: 'f', to: p }), 'PATH_ESCAPE')
    await rejects(apply({ kind: 'link', path: p, to: 'stolen' }), 'PATH_ESCAPE')
  }
  await rejects(apply({ kind: 'rename', path: 'f', to: '../outside/secret' }), 'PATH_ESCAPE')
  assert.is(fs.readFileSync(path.join(env.root, 'f'), 'utf8'), 'mine')
  assert.not.ok(fs.existsSync(path.join(env.root, 'stolen')))
})

test('operations that would follow a final symlink out refuse to', async () => {
  for (const p of ['secret', 'dangling', 'out']) {
    await rejects(apply({ kind: 'write', path: p, off: 0, data: bytes('pwned') }), 'PATH_ESCAPE', /is a symlink/)
    await rejects(apply({ kind: 'truncate', path: p, size: 0 }), 'PATH_ESCAPE', /is a symlink/)
    await rejects(apply({ kind: 'chmod', path: p, mode: 0o777 }), 'PATH_ESCAPE', /is a symlink/)
    await rejects(apply({ kind: 'fsync', path: p }), 'PATH_ESCAPE', /is a symlink/)
    // O_EXCL: the dangling link's target outside is not created.
    await rejects(apply({ kind: 'create', path: p, mode: 0o666 }), 'APPLY_FAILED', /EEXIST/)
    await rejects(apply({ kind: 'mknod', path: p, mode: 0o010666, rdev: 0 }), 'APPLY_FAILED', /EEXIST/)
    await rejects(apply({ kind: 'mkdir', path: p, mode: 0o777 }), 'APPLY_FAILED', /EEXIST/)
    // xattrs go on the link itself (Linux refuses user.* there), never the target.
    await rejects(apply({ kind: 'setxattr', path: p, name: 'user.pwned', value: bytes('1'), flags: 0 }), 'APPLY_FAILED', /EPERM/)
  }
  assert.is(await getAttribute(path.join(env.outside, 'secret'), 'user.pwned'), null)
})

test('ownership and times of a final symlink change the link, not its target', async () => {
  await apply({ kind: 'chown', path: 'secret', uid: 999, gid: 999 })
  await apply({ kind: 'utimens', path: 'secret', atimeMs: 1000, mtimeMs: 1000 })
  const link = fs.lstatSync(path.join(env.root, 'secret'))
  assert.is(link.uid, 999)
  assert.is(link.mtimeMs, 1000)
  // assertOutsideUntouched (after each) checks the target kept its owner.
})

test('state and unlink of a symlink out remove the link, not what it points at', async () => {
  await apply({ kind: 'state', path: 'out', type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false })
  await apply({ kind: 'state', path: 'secret', type: 'file', mode: 0o600, uid: 0, gid: 0, size: 3, target: '', whole: true })
  await apply({ kind: 'unlink', path: 'abs' })
  assert.not.ok(fs.existsSync(path.join(env.root, 'out')))
  assert.ok(fs.lstatSync(path.join(env.root, 'secret')).isFile())
  assert.is(fs.statSync(path.join(env.root, 'secret')).size, 3)
})

test('a symlink inside the root is followed as a parent: it is not an escape', async () => {
  fs.symlinkSync('in', path.join(env.root, 'alias'))
  await apply({ kind: 'create', path: 'alias/x', mode: 0o644 })
  await apply({ kind: 'write', path: 'alias/x', off: 0, data: bytes('ok') })
  assert.is(fs.readFileSync(path.join(env.root, 'in', 'x'), 'utf8'), 'ok')
  // A dangling link inside the root as a parent is just a missing directory.
  await rejects(apply({ kind: 'create', path: 'in/hop/x', mode: 0o644 }), 'APPLY_FAILED', /ENOENT/)
})

test('at a depth past PATH_MAX the same symlinks are refused and the same inside ones followed', async () => {
  // 20 levels of 200-byte names, then 60-byte ones: record paths of ~4090
  // bytes, whose absolute form on this side passes 4096 bytes.
  const chain = Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(200, 'x'))
  const deep = chain.join('/')
  const [out, abs, alias, sub] = ['o', 'a', 'l', 's'].map(c => c.repeat(60))
  let fd = fs.openSync(env.root, fs.constants.O_RDONLY)
  for (const n of chain) {
    fs.mkdirSync(`/proc/self/fd/${fd}/${n}`)
    const next = fs.openSync(`/proc/self/fd/${fd}/${n}`, fs.constants.O_RDONLY)
    fs.closeSync(fd); fd = next
  }
  try {
    fs.symlinkSync('../'.repeat(chain.length + 1) + 'outside', `/proc/self/fd/${fd}/${out}`) // relative, leads out
    fs.symlinkSync(env.outside, `/proc/self/fd/${fd}/${abs}`)
    fs.symlinkSync('../'.repeat(chain.length) + 'in', `/proc/self/fd/${fd}/${alias}`) // relative, stays inside
    assert.ok(Buffer.byteLength(path.join(env.root, deep, out, 'secret')) > 4096)
    for (const p of [`${deep}/${out}/secret`, `${deep}/${out}/new`, `${deep}/${abs}/secret`]) {
      await rejects(apply({ kind: 'write', path: p, off: 0, data: bytes('pwned') }), 'PATH_ESCAPE', /outside the volume/)
      await rejects(apply({ kind: 'create', path: p, mode: 0o777 }), 'PATH_ESCAPE', /outside the volume/)
      await rejects(apply({ kind: 'rename', path: 'f', to: p }), 'PATH_ESCAPE', /outside the volume/)
      await rejects(apply({ kind: 'state', path: p, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false }), 'PATH_ESCAPE', /outside the volume/)
    }
    await rejects(apply({ kind: 'write', path: `${deep}/${out}`, off: 0, data: bytes('pwned') }), 'PATH_ESCAPE', /is a symlink/)
    await apply({ kind: 'create', path: `${deep}/${alias}/x`, mode: 0o644 })
    await apply({ kind: 'write', path: `${deep}/${alias}/x`, off: 0, data: bytes('ok') })
    assert.is(fs.readFileSync(path.join(env.root, 'in', 'x'), 'utf8'), 'ok')
    // And plain work at that depth, a subtree removed by a state record included.
    await apply({ kind: 'mkdir', path: `${deep}/${sub}`, mode: 0o700 })
    await apply({ kind: 'create', path: `${deep}/${sub}/f`, mode: 0o600 })
    await apply({ kind: 'write', path: `${deep}/${sub}/f`, off: 0, data: bytes('deep') })
    assert.is(fs.readFileSync(`/proc/self/fd/${fd}/${sub}/f`, 'utf8'), 'deep')
    await apply({ kind: 'state', path: `${deep}/${sub}`, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false })
    assert.not.ok(fs.existsSync(`/proc/self/fd/${fd}/${sub}`))
  } finally {
    fs.closeSync(fd)
  }
  // The whole deep tree goes the same way (fs.rm cannot: its paths grow past PATH_MAX).
  await apply({ kind: 'state', path: chain[0], type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false })
  assert.not.ok(fs.existsSync(path.join(env.root, chain[0])))
})

test('unknown volume and image overrun are refused; the rest of the batch is not applied', async () => {
  await rejects(applyBatch(env.vols, { seq: 5, records: [
    { kind: 'write', vol: 42, path: 'f', off: 0, data: bytes('x') },
    { kind: 'write', vol: DIR, path: 'f', off: 0, data: bytes('XXXX') }
  ] }), 'UNKNOWN_VOLUME', /^sequence 5: .*volume 42/)
  await rejects(applyBatch(env.vols, { seq: 9, records: [
    { kind: 'write', vol: IMG, path: '', off: imageSize, data: bytes('x') },
    { kind: 'write', vol: DIR, path: 'f', off: 0, data: bytes('XXXX') }
  ] }), 'IMAGE_BOUNDS', /^sequence 9: /)
  assert.is(fs.readFileSync(path.join(env.root, 'f'), 'utf8'), 'mine')
  assert.is(fs.statSync(env.image).size, imageSize)
})

test.run()
