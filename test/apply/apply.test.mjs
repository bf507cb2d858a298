// One suite body, every backend (litestream's replica_client_test.go in
// spirit): the same records applied to a directory volume and to an image
// volume, with the expectations that differ written next to each other.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { applyRecord, applyBatch } from '../../dist/apply/apply.js'
import { makeEnv, rejects, bytes, DIR, IMG, imageSize } from './env.mjs'

const backends = [
  {
    name: 'dir',
    vol: DIR,
    path: 'f', // a file made by `prepare`
    prepare: (env) => applyRecord(env.vols, { kind: 'create', vol: DIR, path: 'f', mode: 0o644 }),
    content: (env) => fs.readFileSync(path.join(env.root, 'f'))
  },
  {
    name: 'image',
    vol: IMG,
    path: '', // image records name the image itself
    prepare: async () => {},
    content: (env) => fs.readFileSync(env.image)
  }
]

const hostilePaths = ['../x', '/etc/passwd', 'a/../../x', 'x\0y', '../outside/secret', '..', 'a//b', 'a/']

/** Records of every kind, aimed at `p` (rename/link: from a harmless name to `p` too). */
function everyKind (vol, p) {
  const st = { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, target: '', whole: false }
  return [
    { kind: 'write', vol, path: p, off: 0, data: bytes('pwned') },
    { kind: 'truncate', vol, path: p, size: 0 },
    { kind: 'create', vol, path: p, mode: 0o644 },
    { kind: 'mkdir', vol, path: p, mode: 0o755 },
    { kind: 'mknod', vol, path: p, mode: 0o010644, rdev: 0 },
    { kind: 'unlink', vol, path: p },
    { kind: 'rmdir', vol, path: p },
    { kind: 'rename', vol, path: p, to: 'ok' },
    { kind: 'rename', vol, path: 'f', to: p },
    { kind: 'link', vol, path: p, to: 'ok' },
    { kind: 'link', vol, path: 'f', to: p },
    { kind: 'symlink', vol, path: p, target: '/etc/passwd' },
    { kind: 'chmod', vol, path: p, mode: 0o777 },
    { kind: 'chown', vol, path: p, uid: 1, gid: 1 },
    { kind: 'utimens', vol, path: p, atimeMs: 0, mtimeMs: 0 },
    { kind: 'setxattr', vol, path: p, name: 'user.x', value: bytes('v'), flags: 0 },
    { kind: 'removexattr', vol, path: p, name: 'user.x' },
    { kind: 'fsync', vol, path: p },
    { kind: 'state', vol, path: p, ...st },
    { kind: 'state', vol, path: p, ...st, type: 'absent' }
  ]
}

for (const b of backends) {
  const s = suite(`apply on a ${b.name} volume`, {})
  s.before.each(async (ctx) => { ctx.env = await makeEnv(); await b.prepare(ctx.env) })
  s.after.each(async (ctx) => { await ctx.env.cleanup() })

  s('writes land at their offsets, later over earlier', async ({ env }) => {
    await applyBatch(env.vols, { seq: 1, records: [
      { kind: 'write', vol: b.vol, path: b.path, off: 100, data: bytes('abcdef') },
      { kind: 'write', vol: b.vol, path: b.path, off: 102, data: bytes('XY') },
      { kind: 'fsync', vol: b.vol, path: b.path }
    ] })
    const c = b.content(env)
    assert.is(c.subarray(100, 106).toString(), 'abXYef')
    assert.ok(c.subarray(0, 100).every(x => x === 0), 'bytes before the write are zero')
    assert.is(c.length, b.name === 'image' ? imageSize : 106)
    env.assertOutsideUntouched()
  })

  s('a write past the end: grows a file, is refused whole on an image', async ({ env }) => {
    const r = { kind: 'write', vol: b.vol, path: b.path, off: imageSize - 2, data: bytes('1234') }
    if (b.name === 'image') {
      await rejects(applyRecord(env.vols, r), 'IMAGE_BOUNDS', /past the image end/)
      assert.is(fs.statSync(env.image).size, imageSize)
      assert.ok(b.content(env).every(x => x === 0), 'not even the bytes that fit were written')
      await rejects(applyRecord(env.vols, { ...r, off: Number.MAX_SAFE_INTEGER }), 'IMAGE_BOUNDS')
    } else {
      await applyRecord(env.vols, r)
      assert.is(b.content(env).length, imageSize + 2)
    }
  })

  s('state of the whole file', async ({ env }) => {
    const st = { kind: 'state', vol: b.vol, path: b.path, type: 'file', mode: 0o600, uid: 0, gid: 0, size: imageSize, target: '', whole: false }
    await applyRecord(env.vols, { kind: 'write', vol: b.vol, path: b.path, off: 0, data: bytes('keep') })
    await applyRecord(env.vols, st)
    assert.is(b.content(env).length, imageSize)
    assert.is(b.content(env).subarray(0, 4).toString(), 'keep')
    if (b.name === 'image') {
      await rejects(applyRecord(env.vols, { ...st, size: imageSize + 1 }), 'IMAGE_BOUNDS')
      await rejects(applyRecord(env.vols, { ...st, type: 'dir' }), 'BAD_RECORD')
    } else {
      assert.is(fs.statSync(path.join(env.root, 'f')).mode & 0o7777, 0o600)
      await applyRecord(env.vols, { ...st, size: 2, whole: true })
      assert.equal([...b.content(env)], [0, 0], 'whole: content dropped, to be rewritten by the writes that follow')
    }
  })

  s('namespace and metadata records: applied on a directory, BAD_RECORD on an image', async ({ env }) => {
    const recs = [
      { kind: 'truncate', vol: b.vol, path: b.path, size: 3 },
      { kind: 'chmod', vol: b.vol, path: b.path, mode: 0o640 },
      { kind: 'chown', vol: b.vol, path: b.path, uid: 0, gid: 0 },
      { kind: 'utimens', vol: b.vol, path: b.path, atimeMs: 1e12, mtimeMs: 1e12 },
      { kind: 'setxattr', vol: b.vol, path: b.path, name: 'user.k', value: bytes('v'), flags: 0 },
      { kind: 'removexattr', vol: b.vol, path: b.path, name: 'user.k' },
      { kind: 'mkdir', vol: b.vol, path: b.path ? 'd' : '', mode: 0o755 },
      { kind: 'symlink', vol: b.vol, path: b.path ? 's' : '', target: 'f' },
      { kind: 'link', vol: b.vol, path: b.path, to: 'g' },
      { kind: 'rename', vol: b.vol, path: b.path ? 'g' : '', to: 'h' },
      { kind: 'unlink', vol: b.vol, path: b.path ? 'h' : '' },
      { kind: 'rmdir', vol: b.vol, path: b.path ? 'd' : '' },
      { kind: 'create', vol: b.vol, path: b.path ? 'c' : '', mode: 0o644 },
      { kind: 'mknod', vol: b.vol, path: b.path ? 'p' : '', mode: 0o010600, rdev: 0 }
    ]
    for (const r of recs) {
      if (b.name === 'image') await rejects(applyRecord(env.vols, r), 'BAD_RECORD', /not valid on an image/)
      else await applyRecord(env.vols, r)
    }
    if (b.name === 'image') {
      assert.is(fs.statSync(env.image).size, imageSize)
      assert.equal(fs.readdirSync(env.base).sort(), ['disk.img', 'outside', 'vol'])
    } else {
      assert.equal(fs.readdirSync(env.root).sort(), ['c', 'f', 'p', 's'])
      assert.is(fs.statSync(path.join(env.root, 'f')).size, 3)
    }
  })

  s('a non-empty path on an image is BAD_RECORD; a device node is made exactly (the replica is exact)', async ({ env }) => {
    if (b.name === 'image') {
      await rejects(applyRecord(env.vols, { kind: 'write', vol: IMG, path: 'f', off: 0, data: bytes('x') }), 'BAD_RECORD')
      await rejects(applyRecord(env.vols, { kind: 'mknod', vol: b.vol, path: '', mode: 0o020600, rdev: 0x0103 }), 'BAD_RECORD')
      return
    }
    await applyRecord(env.vols, { kind: 'mknod', vol: b.vol, path: 'dev', mode: 0o020600, rdev: 0x0103 })
    const st = fs.lstatSync(path.join(env.root, 'dev'))
    assert.ok(st.isCharacterDevice())
    assert.is(st.mode & 0o7777, 0o600)
    assert.is(st.rdev, 0x0103)
  })

  s('hostile paths are refused with PATH_ESCAPE for every kind; nothing outside changes', async ({ env }) => {
    for (const p of hostilePaths) {
      for (const r of everyKind(b.vol, p)) {
        await rejects(applyRecord(env.vols, r), 'PATH_ESCAPE')
      }
    }
    env.assertOutsideUntouched()
    assert.equal(fs.readdirSync(env.root), b.name === 'dir' ? ['f'] : [])
  })

  s('an unknown volume is refused with UNKNOWN_VOLUME', async ({ env }) => {
    await rejects(applyRecord(env.vols, { kind: 'write', vol: 7, path: b.path, off: 0, data: bytes('x') }), 'UNKNOWN_VOLUME', /volume 7/)
    env.assertOutsideUntouched()
  })

  s('a batch stops at the first failure, names its sequence, keeps what came before', async ({ env }) => {
    const err = await rejects(applyBatch(env.vols, { seq: 40, records: [
      { kind: 'write', vol: b.vol, path: b.path, off: 0, data: bytes('first') },
      { kind: 'write', vol: b.vol, path: '../escape', off: 0, data: bytes('x') },
      { kind: 'write', vol: b.vol, path: b.path, off: 0, data: bytes('never') }
    ] }), 'PATH_ESCAPE', /^sequence 41: /)
    assert.ok(err)
    assert.is(b.content(env).subarray(0, 5).toString(), 'first')
  })

  s('a range applies only the records inside it', async ({ env }) => {
    const n = await applyBatch(env.vols, { seq: 10, records: [
      { kind: 'write', vol: b.vol, path: b.path, off: 0, data: bytes('a') },
      { kind: 'write', vol: b.vol, path: b.path, off: 1, data: bytes('b') },
      { kind: 'write', vol: b.vol, path: b.path, off: 2, data: bytes('c') }
    ] }, { from: 11, to: 11 })
    assert.is(n, 1)
    const c = b.content(env)
    assert.equal([c[0], c[1], c[2] ?? 0], [0, 98, 0])
    assert.is(c.length, b.name === 'image' ? imageSize : 2)
  })

  s.run()
}
