// timeout: 1500
// POSIX conformance with pjdfstest (vendored in ../shared/conformance, run
// by ../shared/tools/pjdfstest-run): at most as many failing subtests as a C
// passthrough (bindfs -o big_writes fails 55 of 8,798 here), on a capturing
// mount, and (make conformance) on the primary of a replicating pair, whose
// replica must then equal the primary's backing store exactly (names, types,
// modes, owners, sizes, contents, link targets, xattrs, hard-link groups).
// In the suite on a pair: pjdfstest's files that build paths of PATH_MAX
// (4095 bytes under the volume: their absolute form passes PATH_MAX on
// both sides), then a tree left that deep, compared exactly.
// A whole run takes 15-22 minutes on this 2-core machine when it is busy,
// more than the suite can give it: the suite runs the directories of
// pjdfstest that exercise what the core captures (modes, owners, links,
// special files, times, opens, truncation, removal), `make conformance`
// (PJDFSTEST_FULL=1) all of it, and PJDFSTEST_PAIR=1 adds the run on a
// replicating primary.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { ROOT, tempDir, mount, unstick, bounded, sh } from '../helpers/mount.mjs'
import { layout, startPair, stopAll, waitSynced } from '../helpers/pair.mjs'
import { snapshot } from '../helpers/tree.mjs'

const tool = join(ROOT, '..', 'shared', 'tools', 'pjdfstest-run')
const maxFailed = 55
// (pjdfstest-run's --only is a substring: 'link/' takes link/, symlink/ and unlink/)
const suiteDirs = process.env.PJDFSTEST_DIRS?.split(',') ?? ['chmod/', 'link/', 'mkdir/', 'mkfifo/', 'mknod/', 'open/', 'truncate/', 'utimensat/']
// Files whose paths reach PATH_MAX (dirgen_max in misc.sh builds them): the
// */03.t that test ENAMETOOLONG of a whole path, and rename/02. Each takes
// 20-40 s here (its names come from a shell loop of dd | openssl), so the
// suite runs three that make, rename and remove entries that deep (the
// rest of what happens at that depth is in test/pair/deep-paths.test.mjs);
// PJDFSTEST_PATH_MAX=all runs all twelve.
const pathMaxFiles = process.env.PJDFSTEST_PATH_MAX === 'all'
  ? ['chmod/03', 'chown/03', 'truncate/03', 'link/03', 'mkdir/03', 'mkfifo/03', 'mknod/03', 'open/03', 'rmdir/03', 'rename/02']
  : ['mkdir/03', 'open/03', 'rename/02']

/** Runs pjdfstest in `dir` (all of it, or the suite's directories, or
 *  `only`'s files); returns the subtests run and failed, and the files
 *  timed out. */
function pjdfstest (dir, only = process.env.PJDFSTEST_FULL ? null : suiteDirs) {
  const runs = only ? only.map(d => ['--only', d]) : [[]]
  const total = { subtests: 0, failed: 0, timedOut: 0 }
  for (const only of runs) {
    let out
    try {
      out = execFileSync(tool, [dir, ...only], { encoding: 'utf8', timeout: 1_300_000, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PJD_TIMEOUT: process.env.PJD_TIMEOUT ?? '600' } })
    } catch (err) {
      out = `${err.stdout ?? ''}${err.stderr ?? ''}`
    }
    const m = /pjdfstest: (\d+) files, (\d+) subtests, (\d+) failed subtests in (\d+) files, (\d+) timed out/.exec(out)
    assert.ok(m, `pjdfstest ${only.join(' ')} did not finish:\n${out.slice(-2000)}`)
    console.log(out.trim().split('\n').slice(-6).join('\n'))
    total.subtests += Number(m[2]); total.failed += Number(m[3]); total.timedOut += Number(m[5])
  }
  return total
}

test.before(() => {
  if (!fs.existsSync(tool)) throw new Error(`pjdfstest-run not found at ${tool} (../shared beside the repository)`)
})

test('pjdfstest on a capturing mount', bounded(process.env.PJDFSTEST_FULL ? 3_000_000 : 1_400_000, async () => {
  const base = tempDir('pjd')
  const src = join(base, 'src'); const mnt = join(base, 'mnt')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  const d = await mount([src, mnt, '--state', join(base, 'state')])
  let r
  try {
    r = pjdfstest(mnt)
  } finally {
    const s = await d.stop()
    unstick(mnt)
    assert.equal(s.code, 0, d.err)
  }
  assert.ok(r.subtests > (process.env.PJDFSTEST_FULL ? 8000 : 1000), `only ${r.subtests} subtests ran`)
  assert.is(r.timedOut, 0)
  assert.ok(r.failed <= maxFailed, `${r.failed} failed subtests (a C passthrough fails ${maxFailed})`)
}))

if (process.env.PJDFSTEST_PAIR) test('pjdfstest on a replicating primary; the replica is exact', bounded(process.env.PJDFSTEST_FULL ? 3_000_000 : 1_450_000, async () => {
  const L = layout('pjd-pair', { vols: ['v'] })
  const { sec, pri } = await startPair(L, 17191)
  let r
  try {
    r = pjdfstest(join(L.mnt, 'v'))
    console.log(`pjdfstest on the replicating primary: ${r.subtests} subtests, ${r.failed} failed, ${r.timedOut} timed out`)
    // pjdfstest removes what it made: leave a tree with owners, links,
    // special files and xattrs behind for the comparison.
    const v = join(L.mnt, 'v')
    sh(`cp -a /usr/include/linux ${v}/inc && chown -R 1234:4321 ${v}/inc/netfilter && ln ${v}/inc/fs.h ${v}/inc/fs-link.h && mkfifo ${v}/fifo && mknod ${v}/zero c 1 5 && setfattr -n user.k -v 0x00ff80 ${v}/inc/fs.h && mkdir ${v}/sg && chmod 2775 ${v}/sg && chown :99 ${v}/sg && mkdir ${v}/sg/sub`)
    await waitSynced(L, 120_000)
  } finally {
    await stopAll(L, pri, sec)
  }
  assert.ok(r.subtests > (process.env.PJDFSTEST_FULL ? 8000 : 1000), `only ${r.subtests} subtests ran`)
  assert.is(r.timedOut, 0)
  assert.ok(r.failed <= maxFailed, `${r.failed} failed subtests (a C passthrough fails ${maxFailed})`)
  assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }))
}))

test('pjdfstest\'s PATH_MAX files on a replicating primary, then a tree that deep; the replica is exact', bounded(300_000, async () => {
  const L = layout('pjd-deep', { vols: ['v'] })
  const { sec, pri } = await startPair(L, 17701)
  let r
  try {
    const v = join(L.mnt, 'v')
    r = pjdfstest(v, pathMaxFiles)
    console.log(`pjdfstest's PATH_MAX files on the replicating primary: ${r.subtests} subtests, ${r.failed} failed, ${r.timedOut} timed out`)
    // pjdfstest removes what it made: leave a tree that deep behind.
    leaveDeepTree(v)
    await waitSynced(L, 120_000)
  } finally {
    await stopAll(L, pri, sec)
  }
  assert.ok(r.subtests >= 10, `only ${r.subtests} subtests ran`)
  assert.is(r.timedOut, 0)
  assert.is(r.failed, 0)
  assert.equal(snapshot(L.s.v, { exact: true }), snapshot(L.p.v, { exact: true }))
}))

/** Under `dir`, directories of 127-byte names down to 4095 bytes (as
 *  pjdfstest's dirgen_max), holding a file, a hard link, a symlink, a fifo. */
function leaveDeepTree (dir) {
  let fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    for (let depth = 0, bytes = 0; bytes + 128 + 40 < 4095; depth++, bytes += 128) {
      const name = `${depth}`.padEnd(127, 'p')
      fs.mkdirSync(`/proc/self/fd/${fd}/${name}`, 0o750)
      const next = fs.openSync(`/proc/self/fd/${fd}/${name}`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
      fs.closeSync(fd)
      fd = next
    }
    const at = n => `/proc/self/fd/${fd}/${n}`
    fs.writeFileSync(at('file'), 'at PATH_MAX\n'.repeat(1000))
    fs.chmodSync(at('file'), 0o604)
    fs.linkSync(at('file'), at('hard'))
    fs.symlinkSync('file', at('soft'))
    sh(`mkfifo /proc/${process.pid}/fd/${fd}/fifo`) // (Node has no mkfifo)
  } finally {
    fs.closeSync(fd)
  }
}

test.run()
