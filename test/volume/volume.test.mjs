// Opening volumes, and the Volume seam's own contracts (plain POSIX errors,
// no replay tolerance: that is apply/'s business).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { openVolumes, closeVolumes } from '../../dist/volume/volume.js'
import { tmpRoot, rejects, bytes } from '../apply/env.mjs'

let base
test.before.each(() => {
  fs.mkdirSync(tmpRoot, { recursive: true })
  base = fs.mkdtempSync(path.join(tmpRoot, 'replfs-volume-'))
})
test.after.each(() => { fs.rmSync(base, { recursive: true, force: true }) })

const dirSpec = (p, num = 0) => ({ num, name: `d${num}`, kind: 'dir', path: p, size: 0 })
const imgSpec = (p, size, num = 1) => ({ num, name: `i${num}`, kind: 'image', path: p, size })

test('a missing image file is created, sparse, at the volume size', async () => {
  const img = path.join(base, 'disk.img')
  const vols = await openVolumes([imgSpec(img, 1 << 20)])
  const st = fs.statSync(img)
  assert.is(st.size, 1 << 20)
  assert.ok(st.blocks * 512 < (1 << 20), 'sparse')
  await closeVolumes(vols)
  // Reopening an image of the right size keeps its content.
  fs.writeFileSync(img, Buffer.alloc(1 << 20, 1))
  const again = await openVolumes([imgSpec(img, 1 << 20)])
  assert.is((await again.get(1).read('', 0, 2)).toString('hex'), '0101')
  await closeVolumes(again)
})

test('an existing image of another size is refused: it is another disk', async () => {
  const img = path.join(base, 'disk.img')
  fs.writeFileSync(img, Buffer.alloc(4096))
  await rejects(openVolumes([imgSpec(img, 8192)]), 'IMAGE_BOUNDS', /4096 bytes, the volume is 8192/)
  assert.is(fs.statSync(img).size, 4096)
})

test('a directory volume needs its root to exist and be a directory', async () => {
  await rejects(openVolumes([dirSpec(path.join(base, 'missing'))]), 'USAGE', /cannot be opened/)
  assert.not.ok(fs.existsSync(path.join(base, 'missing')))
  fs.writeFileSync(path.join(base, 'file'), '')
  await rejects(openVolumes([dirSpec(path.join(base, 'file'))]), 'USAGE', /not a directory/)
})

test('duplicate volume numbers are refused and what was opened is closed', async () => {
  fs.mkdirSync(path.join(base, 'a'))
  await rejects(openVolumes([dirSpec(path.join(base, 'a'), 3), dirSpec(path.join(base, 'a'), 3)]), 'USAGE', /given twice/)
})

test('an image size that is not positive is refused', async () => {
  await rejects(openVolumes([imgSpec(path.join(base, 'x.img'), 0)]), 'USAGE', /no size/)
})

test('a root reached through a symlink is confined to its real path', async () => {
  fs.mkdirSync(path.join(base, 'real'))
  fs.symlinkSync('real', path.join(base, 'via'))
  const vols = await openVolumes([dirSpec(path.join(base, 'via'))])
  const v = vols.get(0)
  await v.mkdir('d', 0o755)
  await v.create('d/f', 0o600)
  await v.write('d/f', 3, bytes('abc'))
  assert.equal([...await v.read('d/f', 0, 10)], [0, 0, 0, 97, 98, 99])
  assert.ok(fs.existsSync(path.join(base, 'real', 'd', 'f')))
  await closeVolumes(vols)
})

test('the seam reports plain errno errors, without replay tolerance', async () => {
  fs.mkdirSync(path.join(base, 'v'))
  const vols = await openVolumes([dirSpec(path.join(base, 'v'))])
  const v = vols.get(0)
  await rejects(v.unlink('missing'), 'ENOENT')
  await v.mkdir('d', 0o755)
  await rejects(v.mkdir('d', 0o755), 'EEXIST')
  await rejects(v.create('d', 0o644), 'EEXIST')
  await rejects(v.removexattr('d', 'user.none'), 'ENODATA')
  assert.is(await v.lstat('missing'), null)
  assert.is(await v.lstat('missing/deeper'), null)
  await closeVolumes(vols)
})

test('a fifo named for data is refused at once instead of blocking apply', async () => {
  fs.mkdirSync(path.join(base, 'v'))
  const vols = await openVolumes([dirSpec(path.join(base, 'v'))])
  const v = vols.get(0)
  await v.mknod('p', 0o010600, 0)
  await rejects(v.write('p', 0, bytes('x')), 'EINVAL', /"p" is a fifo, not a regular file/)
  await closeVolumes(vols)
})

test('image volume: reads past the end are short, writes within bounds land', async () => {
  const vols = await openVolumes([imgSpec(path.join(base, 'disk.img'), 100)])
  const v = vols.get(1)
  await v.write('', 98, bytes('zz'))
  assert.is((await v.read('', 98, 10)).toString(), 'zz')
  assert.is((await v.read('', 200, 10)).length, 0)
  await rejects(v.write('', 99, bytes('zz')), 'IMAGE_BOUNDS')
  await rejects(v.write('', -1, bytes('z')), 'IMAGE_BOUNDS')
  assert.is((await v.lstat('')).size, 100)
  await rejects(v.lstat('x'), 'BAD_RECORD')
  await closeVolumes(vols)
})

test('a write across many pieces lands whole, and only where it was aimed', async () => {
  // The volumes write a record's data in 16 KiB pieces aligned in the file
  // (volume/write-pieces.ts): an unaligned start and a length of several
  // pieces and a part must still land byte for byte.
  const img = path.join(base, 'pieces.img')
  const dir = path.join(base, 'd')
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'f'), Buffer.alloc(200_000, 7))
  const vols = await openVolumes([dirSpec(dir), imgSpec(img, 200_000)])
  const data = Buffer.alloc(100_003)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 5) & 0xff
  await vols.get(0).write('f', 5_000, new Uint8Array(data))
  await vols.get(1).write('', 5_000, new Uint8Array(data))
  await closeVolumes(vols)
  const want = Buffer.alloc(200_000, 7)
  data.copy(want, 5_000)
  assert.ok(fs.readFileSync(path.join(dir, 'f')).equals(want), 'dir volume: the data and the bytes around it')
  const wantImg = Buffer.alloc(200_000)
  data.copy(wantImg, 5_000)
  assert.ok(fs.readFileSync(img).equals(wantImg), 'image volume: the data and the zeros around it')
})

test.run()
