// timeout: 240
// Online verify reads trees deeper than PATH_MAX and names that are not
// UTF-8 exactly as replication writes them, on both sides: a pair holding a
// 4020-byte chain of directories (a file and a byte-named file at its deep
// end) and byte names at the top (255 x \x80, y\xe8 and y\xe9 as two files,
// a symlink to a byte target, an xattr) verifies clean. Then bytes flipped
// in the deep file and in a byte-named file on the secondary, and an xattr
// changed on a byte-named file, are each found under their own path (no
// false mismatch besides); --repair fixes them; verify is clean again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { bounded, cli } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, waitSynced } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { nativeCore } from '../../dist/native/addon.js'
import { nameFromBytes } from '../../dist/core/names.js'

const port = 17850
const verify = (L, ...flags) => cli(['verify', '--state', L.pstate, '--json', ...flags], { timeoutMs: 90_000 })
const report = r => { try { return JSON.parse(r.out) } catch { throw new Error(`verify printed no JSON (exit ${r.code}): ${r.out}\n${r.err}`) } }

const b = (...parts) => Buffer.concat(parts.map(p => Buffer.from(p)))
const under = (dir, ...names) => Buffer.concat([Buffer.from(dir), ...names.flatMap(n => [Buffer.from('/'), Buffer.from(n)])])
const n80 = Buffer.alloc(255, 0x80)
const ye8 = b('y', [0xe8])
const ye9 = b('y', [0xe9])
// 20 levels of 200-byte names: 4020 bytes of directories under the root.
const chain = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`)
const deepName = 'f'.repeat(40)
const at = (fd, name) => Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), Buffer.from(name)])

/** Calls `fn` with an fd of the chain's deepest directory under `root`
 *  (made with `make`), reached one name at a time. */
function withChain (root, fn, make = false) {
  let fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    for (const n of chain) {
      if (make) fs.mkdirSync(at(fd, n))
      const next = fs.openSync(at(fd, n), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW)
      fs.closeSync(fd)
      fd = next
    }
    return fn(fd)
  } finally { fs.closeSync(fd) }
}

function flipByte (file, off) {
  const fd = fs.openSync(file, 'r+')
  const one = Buffer.alloc(1)
  fs.readSync(fd, one, 0, 1, off)
  one[0] ^= 0xff
  fs.writeSync(fd, one, 0, 1, off)
  fs.closeSync(fd)
}

test('verify of a tree deeper than PATH_MAX with names that are not UTF-8: clean, finds each change, repairs', bounded(230_000, async () => {
  const L = layout('verify-deep', { vols: ['v'] })
  assert.ok(L.s.v.length + chain.join('/').length + 2 + deepName.length > 4096, 'the deep paths must pass PATH_MAX')
  // On the primary before the pair starts: the initial sync copies it all.
  withChain(L.p.v, fd => {
    fs.writeFileSync(at(fd, deepName), randomBytes(300_000))
    fs.writeFileSync(at(fd, ye8), randomBytes(100_000))
  }, true)
  fs.writeFileSync(under(L.p.v, n80), randomBytes(150_000))
  fs.writeFileSync(under(L.p.v, ye8), 'e8')
  fs.writeFileSync(under(L.p.v, ye9), 'e9')
  nativeCore().xattrSet(under(L.p.v, ye9), 'user.k', Buffer.from([0, 255, 128]))
  fs.symlinkSync(b('target', [0xff]), under(L.p.v, b('sym', [0xfe])))

  let pri, sec
  try {
    ({ pri, sec } = await startPair(L, port, { ms: 120_000 }))
    assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }), 'after the initial sync')

    let r = await verify(L)
    assert.equal(r.code, 0, `a synced pair verifies clean: ${r.out}${r.err}`)
    let rep = report(r)
    assert.equal(rep.found, [])
    assert.ok(rep.entriesCompared >= chain.length + 7, `every entry compared, the deep ones too: ${rep.entriesCompared}`)

    // Behind the secondary's back.
    withChain(L.s.v, fd => flipByte(at(fd, deepName), 200_000))
    flipByte(under(L.s.v, n80), 70_000)
    nativeCore().xattrSet(under(L.s.v, ye9), 'user.k', Buffer.from('changed'))

    r = await verify(L)
    assert.equal(r.code, 1, `divergent: exit 1: ${r.out}${r.err}`)
    const found = report(r).found
    const deepPath = `${chain.join('/')}/${deepName}`
    const has = (kind, path) => found.find(x => x.kind === kind && x.path === path)
    assert.equal(has('data', deepPath)?.ranges, [[196608, 262144]], `the deep file's block: ${JSON.stringify(found)}`)
    assert.equal(has('data', nameFromBytes(n80))?.ranges, [[65536, 131072]], `the 255 x \\x80 file's block: ${JSON.stringify(found)}`)
    assert.match(has('xattr', nameFromBytes(ye9))?.detail ?? '', /values differ: user.k/, JSON.stringify(found))
    assert.equal(found.length, 3, `nothing else: ${JSON.stringify(found)}`)
    const human = await cli(['verify', '--state', L.pstate], { timeoutMs: 90_000 })
    assert.equal(human.code, 1, human.out + human.err)
    assert.match(human.out, /^  v:y\\xe9: xattr: values differ: user\.k$/m, 'a terminal shows the name\'s bytes')
    assert.match(human.out, new RegExp(`^  v:${'\\\\x80'.repeat(255)}: data differs in bytes 65536-131071 `, 'm'))

    r = await verify(L, '--repair')
    assert.equal(r.code, 0, `repaired: ${r.out}${r.err}`)
    rep = report(r)
    assert.ok(rep.repaired && rep.found.length === 3 && rep.remaining.length === 0, JSON.stringify(rep))

    r = await verify(L)
    assert.equal(r.code, 0, `clean after the repair: ${r.out}${r.err}`)
    await waitSynced(L, 60_000)
    assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }), 'the copy is the primary again')
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
