// File names as bytes (core/names.ts) through the journal codec and the
// apply side: a name that is not valid UTF-8 travels as a CBOR byte string
// and is created, renamed, linked and removed under exactly its bytes;
// 255 x \x80 stays 255 bytes, y\xe8 and y\xe9 stay two names.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { nameFromBytes, nameToBytes, hasEscapes } from '../../dist/core/names.js'
import { encodeBatch, decodeBatch } from '../../dist/journal/codec.js'
import { applyRecord } from '../../dist/apply/apply.js'
import { makeEnv, rejects, bytes, DIR } from './env.mjs'
import { formatVersion } from '../../dist/core/limits.js'

const raw = (...parts) => Buffer.concat(parts.map(p => typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))
const n80 = nameFromBytes(Buffer.alloc(255, 0x80))
const ye8 = nameFromBytes(raw('y', [0xe8]))
const ye9 = nameFromBytes(raw('y', [0xe9]))
const dirName = nameFromBytes(raw('d', [0xff, 0xfe], 'é'))

let env
test.before.each(async () => { env = await makeEnv() })
test.after.each(async () => { env.assertOutsideUntouched(); await env.cleanup() })
const apply = (r) => applyRecord(env.vols, { vol: DIR, ...r })
const names = (dir) => fs.readdirSync(dir, { encoding: 'buffer' }).map(b => b.toString('hex')).sort()

test('every byte string round-trips; valid UTF-8 is its plain string', () => {
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: 1 + (i % 40) }, (_, k) => ((i * 7919 + k * 104729) >>> (k % 5)) & 0xff || 1))
    assert.ok(nameToBytes(nameFromBytes(b)).equals(b), b.toString('hex'))
  }
  assert.is(nameFromBytes(Buffer.from('héllo 😀')), 'héllo 😀')
  assert.not.ok(hasEscapes('héllo 😀'))
  assert.ok(hasEscapes(ye8))
  assert.is.not(ye8, ye9)
})

test('a batch with names that are not UTF-8 holds their bytes and decodes to the same names', () => {
  const records = [
    { kind: 'create', vol: 0, path: `${dirName}/${ye8}`, mode: 0o644 },
    { kind: 'rename', vol: 0, path: ye8, to: ye9 },
    { kind: 'symlink', vol: 0, path: 'l', target: n80 },
    { kind: 'write', vol: 0, path: 'plain', off: 0, data: bytes('x') }
  ]
  const payload = encodeBatch({ v: formatVersion, group: 'g', seq: 1, prev: Buffer.alloc(16), ts: 1, sync: false, records })
  assert.ok(payload.includes(Buffer.alloc(255, 0x80)), 'the raw bytes are in the frame')
  assert.not.ok(payload.includes(Buffer.from('\ufffd')), 'no replacement character')
  const back = decodeBatch(payload).records
  assert.equal(back.slice(0, 3), records.slice(0, 3))
  assert.is(back[3].path, 'plain')
})

test('apply creates, renames, links and removes names under their exact bytes', async () => {
  await apply({ kind: 'mkdir', path: dirName, mode: 0o755 })
  await apply({ kind: 'create', path: `${dirName}/${ye8}`, mode: 0o600 })
  await apply({ kind: 'write', path: `${dirName}/${ye8}`, off: 0, data: bytes('e8') })
  await apply({ kind: 'create', path: `${dirName}/${ye9}`, mode: 0o600 })
  await apply({ kind: 'write', path: `${dirName}/${ye9}`, off: 0, data: bytes('e9') })
  await apply({ kind: 'create', path: n80, mode: 0o644 })
  await apply({ kind: 'chmod', path: n80, mode: 0o640 })
  await apply({ kind: 'utimens', path: n80, atimeMs: 1000, mtimeMs: 2000, atimeNs: 0, mtimeNs: 0 })
  await apply({ kind: 'link', path: n80, to: `${dirName}/${n80}` })
  await apply({ kind: 'symlink', path: 'l', target: ye8 })
  await apply({ kind: 'mknod', path: `${dirName}/fifo${ye8}`, mode: 0o010600, rdev: 0 })
  const d = raw('d', [0xff, 0xfe], 'é')
  const abs = (...p) => Buffer.concat([Buffer.from(env.root + '/'), ...p.flatMap((x, i) => i ? [Buffer.from('/'), x] : [x])])
  assert.equal(names(env.root), [d, Buffer.alloc(255, 0x80), Buffer.from('l')].map(b => b.toString('hex')).sort())
  assert.is(fs.readFileSync(abs(d, raw('y', [0xe8])), 'utf8'), 'e8')
  assert.is(fs.readFileSync(abs(d, raw('y', [0xe9])), 'utf8'), 'e9')
  assert.is(fs.lstatSync(abs(Buffer.alloc(255, 0x80))).mode & 0o777, 0o640)
  assert.is(fs.lstatSync(abs(d, Buffer.alloc(255, 0x80))).nlink, 2)
  assert.ok(fs.readlinkSync(abs(Buffer.from('l')), { encoding: 'buffer' }).equals(raw('y', [0xe8])))
  assert.ok(fs.lstatSync(abs(d, raw('fifo', 'y', [0xe8]))).isFIFO())
  // lstat and replay tolerance see the same names.
  assert.ok((await env.vols.get(DIR).lstat(`${dirName}/${ye9}`)).isFile())
  await apply({ kind: 'create', path: `${dirName}/${ye8}`, mode: 0o600 }) // met its own effect: fine
  await apply({ kind: 'rename', path: `${dirName}/${ye8}`, to: `${dirName}/${ye9}` })
  assert.is(fs.readFileSync(abs(d, raw('y', [0xe9])), 'utf8'), 'e8')
  await apply({ kind: 'setxattr', path: n80, name: 'user.k', value: new Uint8Array([0, 255, 128]), flags: 0 })
  assert.ok((await env.vols.get(DIR).getxattr(n80, 'user.k')).equals(Buffer.from([0, 255, 128])))
  await apply({ kind: 'removexattr', path: n80, name: 'user.k' })
  assert.is(await env.vols.get(DIR).getxattr(n80, 'user.k'), null)
  await apply({ kind: 'unlink', path: n80 })
  // A state record removes a subtree holding such names, exactly.
  await apply({ kind: 'state', path: dirName, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false })
  assert.equal(names(env.root), ['6c'])
})

test('confinement holds for such names: through a symlink out is PATH_ESCAPE', async () => {
  fs.symlinkSync(env.outside, path.join(env.root, 'out'))
  await rejects(apply({ kind: 'create', path: `out/${ye8}`, mode: 0o644 }), 'PATH_ESCAPE', /outside the volume/)
  fs.symlinkSync(env.outside, Buffer.concat([Buffer.from(env.root + '/'), raw('o', [0xff])]))
  await rejects(apply({ kind: 'create', path: `${nameFromBytes(raw('o', [0xff]))}/x`, mode: 0o644 }), 'PATH_ESCAPE', /outside the volume/)
})

test.run()
