// timeout: 200
// A real application on the replica: git. On the mount of a replicating primary (a bash child
// process: the test process never touches the mount), a repository gets commits of text and
// binary files, branches and tags, `git gc` and `git repack -ad`, in async then sync mode.
// At least four times while the pair streams, the secondary is paused (SIGSTOP, a moment: the link
// stays up) and its copy of the repository copied, so the copy is one point of the
// secondary's history, not a mix of several; each copy must pass `git fsck --full --strict`
// and hold a commit history with no hole (in sync mode, holding every commit that had
// returned before the pause). At the end the replica equals the primary's
// backing store and passes fsck too.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { bounded } from '../helpers/mount.mjs'
import { rng } from '../../scripts/faults.mjs'
import { layout, startPair, waitSynced, waitAppliedStored, stopAll, differences, status, sleep } from '../helpers/pair.mjs'

// The application: commits until the stop file appears; `git gc` every 7th, `repack -ad`
// every 11th, a branch and a tag now and then. It appends each returned commit's number to
// the acks file (outside the mount) and prints the last.
const workload = `
set -euo pipefail
repo=$1; acks=$2; stop=$3
mkdir -p "$repo"; cd "$repo"
git init -q -b main .
git config user.email fuzz@replfs.test; git config user.name replfs; git config gc.auto 0
n=0
while [ ! -e "$stop" ]; do
  n=$((n + 1))
  echo "line $n of commit $n" >> "text$((n % 13)).txt"
  head -c $((1000 + (n * 7919) % 30000)) /dev/urandom > "bin$((n % 5)).dat"
  if [ $((n % 9)) = 0 ]; then rm -f "text$(((n / 9) % 13)).txt"; fi
  git add -A
  git commit -q -m "commit $n"
  if [ $((n % 7)) = 0 ]; then git gc -q; fi
  if [ $((n % 11)) = 0 ]; then git repack -adq; fi
  if [ $((n % 5)) = 0 ]; then git tag "t$n"; git branch -f "b$((n % 3))"; fi
  echo $n >> "$acks"
done
echo $n
`

const git = (dir, args) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8', timeout: 60_000 })

/** fsck --full --strict of a copy, and its history: commit numbers 1..m, no hole, m at
 *  least `mustHave`. */
function checkCopy (dir, what, mustHave = 0) {
  const fsck = git(dir, ['fsck', '--full', '--strict', '--no-progress'])
  assert.is(fsck.status, 0, `${what}: git fsck --full --strict failed:\n${fsck.stdout}${fsck.stderr}`)
  const log = git(dir, ['log', '--format=%s', 'main'])
  assert.is(log.status, 0, `${what}: git log: ${log.stderr}`)
  const nums = log.stdout.trim().split('\n').map(s => Number(s.replace('commit ', ''))).reverse()
  nums.forEach((n, i) => assert.is(n, i + 1, `${what}: commit ${i + 1} of the history is "commit ${n}"`))
  assert.ok(nums.length >= mustHave, `${what}: commits that had returned: up to ${mustHave}, the copy holds ${nums.length}`)
  return nums.length
}

const lastAck = f => { try { const l = fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean); return l.length ? Number(l[l.length - 1]) : 0 } catch { return 0 } }

for (const [mode, port] of [['async', 17760], ['sync', 17762]]) {
  test(`git on a ${mode} pair: commits, gc, repack -ad; copies of the secondary pass fsck --full --strict; the replica equals the primary`, bounded(90_000, async () => {
    const L = layout(`faults-git-${mode}`, { vols: ['work'] })
    const acks = join(L.base, 'acked'); const stop = join(L.base, 'stop')
    const r = rng(Number(process.env.FAULT_SEED ?? 11))
    let pri, sec, w
    const seen = []
    try {
      ({ pri, sec } = await startPair(L, port, { mode, pextra: mode === 'sync' ? ['--sync-timeout', '3600'] : [] }))
      let out = ''
      let errOut = ''
      w = spawn('bash', ['-c', workload, 'git-workload', join(L.mnt, 'work', 'repo'), acks, stop], { stdio: ['ignore', 'pipe', 'pipe'] })
      w.stdout.on('data', d => { out += d })
      w.stderr.on('data', d => { errOut += d })
      const wDone = new Promise(resolve => w.on('exit', resolve))
      // At least four copies, and on until the workload has passed a gc and a repack -ad.
      for (let k = 0; (seen.length < 4 || lastAck(acks) < 12) && k < 40; k++) {
        await sleep(1500 + r() * 2000)
        if (seen.length >= 6) continue
        if (!fs.existsSync(join(L.s.work, 'repo', '.git', 'refs', 'heads', 'main'))) continue // before the first commit
        const st = await status(L.sstate)
        if (!st.consistent) continue // a resync's copy is no prefix until it completes
        const copy = join(L.base, `copy${seen.length}`)
        // Sync mode: a commit that returned had its writes acknowledged by the secondary.
        const mustHave = mode === 'sync' ? lastAck(acks) : 0
        // Those were in the secondary's journal when they returned: the copy holds
        // them once it applied what its journal held at this point.
        await waitAppliedStored(L)
        sec.proc.kill('SIGSTOP')
        try {
          fs.cpSync(join(L.s.work, 'repo'), copy, { recursive: true, verbatimSymlinks: true })
        } finally {
          sec.proc.kill('SIGCONT')
        }
        seen.push(checkCopy(copy, `copy ${seen.length} (${mode})`, mustHave))
        fs.rmSync(copy, { recursive: true, force: true })
      }
      fs.writeFileSync(stop, '')
      const code = await wDone
      assert.is(code, 0, `the git workload failed: ${errOut}`)
      const last = Number(out.trim())
      assert.ok(last >= 12, `the workload passed a gc and a repack -ad: ${last} commits`)
      assert.ok(seen.length >= 4, `copies taken while streaming: ${seen.length}`)
      await waitSynced(L, 60_000)
      const final = join(L.base, 'final')
      fs.cpSync(join(L.s.work, 'repo'), final, { recursive: true, verbatimSymlinks: true })
      assert.is(checkCopy(final, `the converged replica (${mode})`), last)
      assert.is(lastAck(acks), last)
      console.log(`git ${mode}: ${last} commits (gc every 7th, repack -ad every 11th); copies of the secondary taken while streaming held ${seen.join(', ')} commits; all fsck --full --strict clean`)
    } finally {
      fs.writeFileSync(stop, '')
      w?.kill('SIGKILL')
      sec?.proc.kill('SIGCONT')
      await stopAll(L, pri, sec)
    }
    assert.equal(differences(L), null)
  }))
}

test.run()
