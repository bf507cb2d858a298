// timeout: 30
// Fast failback, pure parts (replicate/restated.ts): which sequences a
// recovery's ranges cover, what is left of a restated write once the
// pieces the primary holds are taken out, and whether a restated record
// would change anything on a side's data (heldHere, on a temporary tree).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { covered, unheldParts, heldHere, parseDigest, restateChunkBytes, entryKey } from '../../dist/replicate/restated.js'
import { allXattrsSync } from '../../dist/volume/xattr.js'
import { tempDir } from '../helpers/mount.mjs'

const sum = b => createHash('sha256').update(b).digest('hex')

test('covered: every sequence past the point lies in a range', () => {
  assert.ok(covered([[5, 9]], 4, 9))
  assert.ok(covered([[5, 6], [7, 9]], 4, 9))
  assert.ok(covered([[1, 3], [5, 9]], 4, 8))
  assert.not.ok(covered([[6, 9]], 4, 9), 'sequence 5 is a write of its own')
  assert.not.ok(covered([[5, 8]], 4, 9), 'sequence 9 is not restated')
  assert.not.ok(covered([[5, 6], [8, 9]], 4, 9), 'a hole at 7')
  assert.ok(covered([], 9, 9), 'nothing past the point')
})

test('unheldParts: held pieces of a restated write go, the rest stays by the piece', () => {
  const data = Buffer.alloc(restateChunkBytes * 2 + 10, 7)
  const r = { kind: 'write', vol: 0, path: 'f', off: 100, data }
  assert.equal(unheldParts(r, 5, new Set()).map(x => [x.off, x.data.length]), [[100, restateChunkBytes], [100 + restateChunkBytes, restateChunkBytes], [100 + 2 * restateChunkBytes, 10]])
  const left = unheldParts(r, 5, new Set([`5@100`, `5@${100 + 2 * restateChunkBytes}`]))
  assert.equal(left.map(x => [x.off, x.data.length]), [[100 + restateChunkBytes, restateChunkBytes]])
  const st = { kind: 'state', vol: 0, path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, target: '', whole: true }
  assert.equal(unheldParts(st, 6, new Set(['6'])), [])
  assert.equal(unheldParts(st, 6, new Set(['5@100'])), [st])
  assert.is(entryKey({ seq: 5, k: 'w', off: 100 }), '5@100')
  assert.is(entryKey({ seq: 6, k: 's' }), '6')
})

test('heldHere: a restated record is held only where applying it would change nothing', () => {
  const root = tempDir('restated')
  fs.writeFileSync(join(root, 'f'), 'hello world')
  fs.chmodSync(join(root, 'f'), 0o640)
  fs.symlinkSync('f', join(root, 'l'))
  const src = { backing: (vol, rel) => vol === 0 ? join(root, rel) : null, xattrs: allXattrsSync }
  const st = fs.lstatSync(join(root, 'f'))
  const base = { seq: 1, vol: 0, path: 'f' }
  const entries = [
    { ...base, k: 'w', off: 6, len: 5, h: sum(Buffer.from('world')) }, // held
    { ...base, k: 'w', off: 6, len: 5, h: sum(Buffer.from('WORLD')) }, // other bytes
    { ...base, k: 'w', off: 8, len: 5, h: sum(Buffer.from('rld\0\0')) }, // would extend the file
    { ...base, k: 's', type: 'file', mode: 0o640, uid: st.uid, gid: st.gid, size: 11, target: '' }, // held
    { ...base, k: 's', type: 'file', mode: 0o644, uid: st.uid, gid: st.gid, size: 11, target: '' }, // mode differs
    { ...base, k: 's', type: 'file', mode: 0o640, uid: st.uid, gid: st.gid, size: 12, target: '' }, // size differs
    { ...base, path: 'gone', k: 's', type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '' }, // held
    { ...base, k: 's', type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '' }, // it is there
    { ...base, path: 'l', k: 's', type: 'symlink', mode: 0o777, uid: st.uid, gid: st.gid, size: 0, target: 'f' }, // held
    { ...base, path: 'l', k: 's', type: 'symlink', mode: 0o777, uid: st.uid, gid: st.gid, size: 0, target: 'g' }, // other target
    { ...base, vol: 3, k: 's', type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '' } // no such volume
  ]
  assert.equal(heldHere(entries, src, () => false), [true, false, false, true, false, false, true, false, true, false, false])
  assert.equal(heldHere([{ ...base, k: 's', type: 'file', mode: 0, uid: 1, gid: 1, size: 11, target: '' }], src, () => true), [true], 'an image: its size only')
})

test('parseDigest: anything but a digest is no digest', () => {
  assert.equal(parseDigest(JSON.stringify({ ranges: [[2, 3]], entries: [{ seq: 2, k: 'w', vol: 0, path: 'f', off: 0, len: 1, h: 'x' }] })).ranges, [[2, 3]])
  for (const t of [undefined, '', 'x', '[]', '{"ranges":[],"entries":[{"seq":"1","k":"w","vol":0,"path":"f"}]}', '{"ranges":[],"entries":[{"seq":1,"k":"q","vol":0,"path":"f"}]}']) {
    assert.is(parseDigest(t), null, String(t))
  }
})

test.run()
