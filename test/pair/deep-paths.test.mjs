// timeout: 240
// A tree deeper than PATH_MAX replicates exactly. Record paths are up to
// 4095 bytes under a volume's root, so with the root's own path in front
// they pass the 4096 bytes a single system call takes, on both sides: the
// initial sync (the primary's walk of its backing store, the secondary's
// manifest of its copy and the removal of a deep subtree only it has), then
// every kind of operation made through the mount at that depth (create,
// write, chmod, times, xattr, rename of a file and of a directory, symlink,
// link, unlink, mkdir, rmdir). The test reaches the deep end itself through
// directory fds (/proc/self/fd/<fd>/<name>), as applications do with *at().
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { setAttribute } from '@napi-rs/xattr'
import { bounded } from '../helpers/mount.mjs'
import { layout, startPair, waitSynced, stopAll, status } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'

const port = 17700
const at = (fd, name) => `/proc/self/fd/${fd}/${name}`
// 20 levels of 200-byte names: 4020 bytes of directories under the root.
const chain = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`)
const chainBytes = chain.join('/').length
const leaf = (c) => c.repeat(40) // names in the deepest directory: paths of ~4060 bytes

/** Makes (with `make`) or opens the chain under `root`; returns the deepest
 *  directory's fd. Every fd on the way is closed. */
function openChain (root, names, make = false) {
  let fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  for (const n of names) {
    if (make) fs.mkdirSync(at(fd, n), { recursive: false, mode: 0o755 })
    const next = fs.openSync(at(fd, n), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW)
    fs.closeSync(fd)
    fd = next
  }
  return fd
}

function withChain (root, names, fn, make = false) {
  const fd = openChain(root, names, make)
  try { return fn(fd) } finally { fs.closeSync(fd) }
}

/** Where the two snapshots differ (first few keys), or null. */
function diff (a, b) {
  const out = []
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (a[k] !== b[k]) out.push(`${k.slice(-60)}: primary ${a[k] ?? '(none)'} / secondary ${b[k] ?? '(none)'}`)
  }
  return out.length ? out.slice(0, 10).join('\n') : null
}

test('a tree deeper than PATH_MAX: initial sync and every operation at depth replicate exactly', bounded(220_000, async () => {
  const L = layout('deep', { vols: ['v'] })
  assert.ok(L.s.v.length + 1 + chainBytes + 1 + leaf('a').length > 4096, 'the test paths must pass PATH_MAX on the secondary')
  assert.ok(chainBytes + 1 + leaf('a').length < 4096, 'and stay within a record path')
  const big = randomBytes(3 * 1024 * 1024 + 77)
  // Before the pair starts: the primary holds a deep file, the secondary a
  // different version of it and a deep subtree the primary does not have.
  withChain(L.p.v, chain, fd => {
    fs.writeFileSync(at(fd, leaf('a')), big)
    fs.mkdirSync(at(fd, 'pre'))
    fs.writeFileSync(at(fd, 'pre/x'), 'deep and early')
  }, true)
  withChain(L.s.v, chain, fd => {
    const old = Buffer.from(big); old.fill(1, 1024 * 1024, 1024 * 1024 + 5)
    fs.writeFileSync(at(fd, leaf('a')), old)
    fs.mkdirSync(at(fd, 'stale')); fs.mkdirSync(at(fd, 'stale/sub'))
    fs.writeFileSync(at(fd, 'stale/sub/y'), 'only here')
  }, true)

  const { sec, pri } = await startPair(L, port, { ms: 120_000 })
  try {
    assert.is(diff(snapshot(L.p.v, { exact: true }), snapshot(L.s.v, { exact: true })), null, 'after the initial sync')

    // Through the mount, at the deep end.
    withChain(`${L.mnt}/v`, chain, fd => {
      const f = at(fd, leaf('f'))
      fs.writeFileSync(f, randomBytes(200_000))
      const h = fs.openSync(f, 'r+'); fs.writeSync(h, Buffer.from('patched'), 0, 7, 150_000); fs.closeSync(h)
      fs.chmodSync(f, 0o640)
      fs.utimesSync(f, 1_000_000, 2_000_000)
      fs.renameSync(f, at(fd, leaf('g')))
      fs.symlinkSync(leaf('g'), at(fd, leaf('l')))
      fs.linkSync(at(fd, leaf('g')), at(fd, leaf('h')))
      fs.writeFileSync(at(fd, leaf('u')), 'to be removed'); fs.unlinkSync(at(fd, leaf('u')))
      fs.mkdirSync(at(fd, leaf('e'))); fs.rmdirSync(at(fd, leaf('e')))
      fs.mkdirSync(at(fd, leaf('k')), 0o750)
      fs.writeFileSync(at(fd, `${leaf('k').slice(0, 30)}`), 'x')
      fs.truncateSync(at(fd, leaf('a')), 2 * 1024 * 1024)
      fs.rmSync(at(fd, 'pre'), { recursive: true })
    })
    // A rename of a directory near the top moves the whole deep tree.
    fs.renameSync(`${L.mnt}/v/${chain[0]}`, `${L.mnt}/v/moved${chain[0].slice(5)}`)
    const moved = [`moved${chain[0].slice(5)}`, ...chain.slice(1)]
    withChain(`${L.mnt}/v`, moved, fd => {
      fs.writeFileSync(at(fd, leaf('n')), 'after the move')
      fs.chownSync(at(fd, leaf('n')), 1234, 4321)
    })
    const xfd = openChain(`${L.mnt}/v`, moved)
    try {
      await setAttribute(at(xfd, leaf('g')), 'user.deep', Buffer.from([0, 255, 128]))
    } finally { fs.closeSync(xfd) }

    await waitSynced(L, 120_000)
    const s = await status(L.sstate)
    assert.is(s.consistent, true)
    assert.is(diff(snapshot(L.p.v, { exact: true }), snapshot(L.s.v, { exact: true })), null, 'after the operations at depth')
    // The replica holds what was made at depth (not only "the same as the primary").
    withChain(L.s.v, moved, fd => {
      assert.is(fs.readFileSync(at(fd, leaf('n')), 'utf8'), 'after the move')
      assert.is(fs.readlinkSync(at(fd, leaf('l'))), leaf('g'))
      assert.is(fs.lstatSync(at(fd, leaf('g'))).ino, fs.lstatSync(at(fd, leaf('h'))).ino)
      assert.is(fs.lstatSync(at(fd, leaf('g'))).mode & 0o7777, 0o640)
      assert.not.ok(fs.existsSync(at(fd, 'stale')))
    })
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
