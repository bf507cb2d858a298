// timeout: 120
// `replfs pair init` on the primary host prints the one command for the
// other host; run as printed (the secret on stdin, never in argv), it
// stores the secret 0600 and serves; the printed mount command then
// replicates. Also: the secondary's read-only mount shows the replica and
// refuses writes with EROFS.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { tempDir, cli, daemon, unstick, bounded, CLI, isMounted } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { status, waitFor, words } from '../helpers/pair.mjs'


test('pair init / join, then the printed mount replicates; the read-only replica mount refuses writes', bounded(100_000, async () => {
  const base = tempDir('pairverb')
  const p = join(base, 'p'); const s = join(base, 's'); const mnt = join(base, 'mnt'); const ro = join(base, 'ro')
  for (const d of [p, s, mnt, ro]) fs.mkdirSync(d)
  fs.writeFileSync(join(p, 'before.txt'), 'made before pairing')
  const init = await cli(['pair', 'init', '--state', join(base, 'pstate'), '--group', 'web', '--mount', mnt, '--peer', '127.0.0.1:17190',
    '--volume', `data=${p}`, '--remote-state', join(base, 'sstate'), '--remote-volume', `data=${s}`, '--mode', 'sync'])
  assert.is(init.code, 0, init.err)
  const secretFile = join(base, 'pstate', 'secret')
  assert.is(fs.statSync(secretFile).mode & 0o777, 0o600)
  const secret = fs.readFileSync(secretFile, 'utf8').trim()
  assert.not.ok(init.out.includes(secret), 'the secret is not printed')
  const sshLine = init.out.split('\n').find(l => l.trim().startsWith('ssh '))
  const joinCmd = words(words(sshLine.trim())[2])
  assert.equal(joinCmd.slice(0, 3), ['replfs', 'pair', 'join'])
  const mountCmd = words(init.out.split('\n').find(l => l.trim().startsWith('replfs mount')).trim())

  // "the other host": the printed join, its stdin fed from the secret file
  const joined = spawn(process.execPath, [CLI, ...joinCmd.slice(1), '--mount', ro].filter(Boolean), { stdio: ['pipe', 'pipe', 'pipe'] })
  let jout = ''; let jerr = ''
  joined.stdout.on('data', d => { jout += d }); joined.stderr.on('data', d => { jerr += d })
  joined.stdin.end(fs.readFileSync(secretFile))
  let primary
  try {
    await waitFor(() => jout.includes('listening'), 20_000, `join to serve: ${jerr}`)
    assert.is(fs.statSync(join(base, 'sstate', 'secret')).mode & 0o777, 0o600)
    assert.not.ok(fs.readFileSync(`/proc/${joined.pid}/cmdline`, 'utf8').includes(secret), 'not in argv')
    primary = await daemon(mountCmd.slice(1))
    fs.writeFileSync(join(mnt, 'data', 'after.txt'), 'written through the mount')
    await waitFor(async () => { const st = await status(join(base, 'pstate')); return st.peerState === 'streaming' && st.lagRecords === 0 && !st.resync }, 30_000, 'caught up')
    assert.equal(snapshot(s), snapshot(p))
    // the replica, read-only, through the secondary's mount
    assert.ok(isMounted(ro))
    assert.is(fs.readFileSync(join(ro, 'data', 'after.txt'), 'utf8'), 'written through the mount')
    assert.throws(() => fs.writeFileSync(join(ro, 'data', 'x'), 'no'), /EROFS/)
    assert.throws(() => fs.unlinkSync(join(ro, 'data', 'after.txt')), /EROFS/)
  } finally {
    await primary?.stop()
    unstick(mnt)
    joined.kill('SIGTERM')
    await new Promise(resolve => joined.exitCode !== null ? resolve() : joined.on('exit', resolve))
    unstick(ro)
  }
}))

test.run()
