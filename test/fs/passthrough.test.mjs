// timeout: 180
// Each operation through the mount behaves as on a plain directory (same
// result, same errno), and the journal records exactly the successful
// mutations, in order.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { Journal } from '../../dist/journal/journal.js'

// A script of operations; each returns a comparable value or throws.
const script = [
  ['create+write', r => { fs.writeFileSync(join(r, 'a.txt'), 'hello'); return fs.readFileSync(join(r, 'a.txt'), 'utf8') }],
  ['append', r => { fs.appendFileSync(join(r, 'a.txt'), ' world'); return fs.readFileSync(join(r, 'a.txt'), 'utf8') }],
  ['pwrite middle', r => { const fd = fs.openSync(join(r, 'a.txt'), 'r+'); fs.writeSync(fd, 'J', 6); fs.closeSync(fd); return fs.readFileSync(join(r, 'a.txt'), 'utf8') }],
  ['create exclusive existing', r => fs.openSync(join(r, 'a.txt'), 'wx')],
  ['stat size/mode', r => { const s = fs.statSync(join(r, 'a.txt')); return [s.size, s.mode.toString(8), s.nlink] }],
  ['mkdir', r => fs.mkdirSync(join(r, 'd'), { mode: 0o750 })],
  ['mkdir existing', r => fs.mkdirSync(join(r, 'd'))],
  ['mode after mkdir', r => (fs.statSync(join(r, 'd')).mode & 0o7777).toString(8)],
  ['open missing', r => fs.openSync(join(r, 'nope'), 'r')],
  ['read dir as file', r => fs.readFileSync(join(r, 'd'))],
  ['rmdir non-empty', r => { fs.writeFileSync(join(r, 'd/f'), 'x'); fs.rmdirSync(join(r, 'd')) }],
  ['unlink dir', r => fs.unlinkSync(join(r, 'd'))],
  ['rename over existing', r => { fs.writeFileSync(join(r, 'b.txt'), 'bbb'); fs.renameSync(join(r, 'b.txt'), join(r, 'a.txt')); return fs.readFileSync(join(r, 'a.txt'), 'utf8') }],
  ['rename dir', r => { fs.renameSync(join(r, 'd'), join(r, 'e')); return fs.readdirSync(join(r, 'e')) }],
  ['rename dir over non-empty', r => { fs.mkdirSync(join(r, 'g')); fs.writeFileSync(join(r, 'g/x'), '1'); fs.renameSync(join(r, 'e'), join(r, 'g')) }],
  ['hard link', r => { fs.linkSync(join(r, 'a.txt'), join(r, 'hl')); return fs.statSync(join(r, 'a.txt')).nlink }],
  ['link existing', r => fs.linkSync(join(r, 'a.txt'), join(r, 'hl'))],
  ['symlink+readlink', r => { fs.symlinkSync('a.txt', join(r, 'sl')); return [fs.readlinkSync(join(r, 'sl')), fs.readFileSync(join(r, 'sl'), 'utf8')] }],
  ['dangling symlink', r => { fs.symlinkSync('missing', join(r, 'dl')); return fs.readFileSync(join(r, 'dl')) }],
  ['chmod', r => { fs.chmodSync(join(r, 'a.txt'), 0o640); return (fs.statSync(join(r, 'a.txt')).mode & 0o7777).toString(8) }],
  ['chown', r => { fs.chownSync(join(r, 'a.txt'), 1234, 5678); const s = fs.statSync(join(r, 'a.txt')); return [s.uid, s.gid] }],
  ['utimes', r => { fs.utimesSync(join(r, 'a.txt'), 1000000, 2000000); return fs.statSync(join(r, 'a.txt')).mtimeMs }],
  ['truncate grow', r => { fs.truncateSync(join(r, 'a.txt'), 10000); return fs.statSync(join(r, 'a.txt')).size }],
  ['truncate shrink', r => { fs.truncateSync(join(r, 'a.txt'), 2); return fs.readFileSync(join(r, 'a.txt'), 'utf8') }],
  ['ftruncate', r => { const fd = fs.openSync(join(r, 'a.txt'), 'r+'); fs.ftruncateSync(fd, 1); fs.closeSync(fd); return fs.statSync(join(r, 'a.txt')).size }],
  ['open O_TRUNC', r => { fs.writeFileSync(join(r, 'a.txt'), 'new'); return fs.readFileSync(join(r, 'a.txt'), 'utf8') }],
  ['unlink missing', r => fs.unlinkSync(join(r, 'zzz'))],
  ['unlink while open', r => {
    const fd = fs.openSync(join(r, 'open.txt'), 'w+')
    fs.writeSync(fd, 'still here')
    fs.unlinkSync(join(r, 'open.txt'))
    fs.writeSync(fd, '!', 10)
    const b = Buffer.alloc(11); fs.readSync(fd, b, 0, 11, 0)
    fs.closeSync(fd)
    return [b.toString(), fs.existsSync(join(r, 'open.txt'))]
  }],
  ['readdir', r => fs.readdirSync(r).filter(n => !n.startsWith('.fuse_hidden')).sort()],
  ['fsync', r => { const fd = fs.openSync(join(r, 'a.txt'), 'r+'); fs.writeSync(fd, 'sync'); fs.fsyncSync(fd); fs.fdatasyncSync(fd); fs.closeSync(fd) }],
  ['rmdir', r => { fs.rmSync(join(r, 'g'), { recursive: true }); return fs.existsSync(join(r, 'g')) }],
  ['access', r => { fs.accessSync(join(r, 'a.txt'), fs.constants.R_OK | fs.constants.W_OK); return 'ok' }],
  ['statfs', r => fs.statfsSync(r).bsize > 0]
]

function run (root) {
  return script.map(([name, fn]) => {
    try { return [name, 'ok', JSON.stringify(fn(root) ?? null)] } catch (e) { return [name, 'error', e.code] }
  })
}

test('operations through the mount behave as on a plain directory', bounded(120_000, async () => {
  const base = tempDir('pass')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state'); const ref = join(base, 'ref')
  for (const d of [src, mnt, ref]) fs.mkdirSync(d)
  const d = await mount([src, mnt, '--state', state])
  try {
    const viaMount = run(mnt)
    const plain = run(ref)
    for (let i = 0; i < script.length; i++) assert.equal(viaMount[i], plain[i], `operation "${script[i][0]}"`)
    // The backing directory holds what the mount showed.
    assert.equal(snapshot(src), snapshot(ref))
  } finally {
    const r = await d.stop()
    unstick(mnt)
    assert.equal(r.code, 0, `mount exits 0 on SIGTERM: ${d.err}`)
  }
}))

test('the journal records the successful mutations, in order', bounded(60_000, async () => {
  const base = tempDir('rec')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  const d = await mount([src, mnt, '--state', state])
  try {
    fs.mkdirSync(join(mnt, 'dir'))
    fs.writeFileSync(join(mnt, 'dir/f'), 'abc')
    try { fs.mkdirSync(join(mnt, 'dir')) } catch {} // fails: not recorded
    fs.renameSync(join(mnt, 'dir/f'), join(mnt, 'g'))
    fs.chmodSync(join(mnt, 'g'), 0o600)
    fs.symlinkSync('g', join(mnt, 's'))
    fs.linkSync(join(mnt, 'g'), join(mnt, 'h'))
    fs.unlinkSync(join(mnt, 'h'))
    fs.rmdirSync(join(mnt, 'dir'))
  } finally {
    await d.stop()
    unstick(mnt)
  }
  const j = await Journal.open(state, { group: 'src', readOnly: true })
  const recs = []
  for await (const { batch } of j.read(1)) batch.records.forEach((r, i) => recs.push([batch.seq + i, r]))
  const kinds = recs.map(([, r]) => `${r.kind}:${r.path}${r.to ? '>' + r.to : ''}`)
  assert.equal(kinds, ['mkdir:dir', 'create:dir/f', 'write:dir/f', 'rename:dir/f>g', 'chmod:g', 'symlink:s', 'link:g>h', 'unlink:h', 'rmdir:dir'])
  assert.equal(recs.map(([s]) => s), recs.map((_, i) => i + 1), 'sequences are 1..n without gaps')
  assert.equal(Buffer.from(recs[2][1].data).toString(), 'abc')
}))

test.run()
