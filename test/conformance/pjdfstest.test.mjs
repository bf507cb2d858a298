// timeout: 1500
// POSIX conformance with pjdfstest (vendored in ../shared/conformance, run
// by ../shared/tools/pjdfstest-run): at most as many failing subtests as a C
// passthrough (bindfs -o big_writes fails 55 of 8,798 here), on a capturing
// mount, and (make conformance) on the primary of a replicating pair, whose
// replica must then equal the primary's backing store exactly (names, types,
// modes, owners, sizes, contents, link targets, xattrs, hard-link groups).
// The pair run is not in the suite yet: pjdfstest's paths near PATH_MAX
// cannot be applied on the secondary, which builds absolute paths (the copy
// is then held back with APPLY_BLOCKED, never skipped); see the note.
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

/** Runs pjdfstest in `dir` (all of it, or the suite's directories); returns
 *  the subtests run and failed, and the files timed out. */
function pjdfstest (dir) {
  const runs = process.env.PJDFSTEST_FULL ? [[]] : suiteDirs.map(d => ['--only', d])
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

test.run()
