// timeout: 120
// Bad invocations of `replfs mount` get one clear line on stderr, a
// non-zero exit, and create nothing.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, cli, bounded } from '../helpers/mount.mjs'

function listing (dir) {
  const out = []
  const walk = d => { for (const n of fs.readdirSync(d).sort()) { out.push(join(d, n)); if (fs.statSync(join(d, n)).isDirectory()) walk(join(d, n)) } }
  walk(dir)
  return out
}

test('bad invocations fail clearly and create nothing', bounded(100_000, async () => {
  const base = tempDir('usage')
  const src = join(base, 'src'); const mnt = join(base, 'mnt'); const other = join(base, 'otherstate')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  fs.mkdirSync(other); fs.writeFileSync(join(other, 'group.json'), JSON.stringify({ group: 'someone-else', volumes: [], single: false }))
  const before = listing(base)
  const cases = [
    [['mount', join(base, 'missing'), mnt, '--state', join(base, 's1')], /does not exist/],
    [['mount', src, join(base, 'nomnt'), '--state', join(base, 's2')], /mountpoint .* does not exist/],
    [['mount', mnt, '--group', 'g', '--state', join(base, 's3'), '--image', `disk=${join(base, 'd.img')}:12Q`], /bad size/],
    [['mount', mnt, '--group', 'g', '--state', join(base, 's4'), '--image', `disk=${join(base, 'd.img')}:1000`], /multiple of 4096/],
    [['mount', mnt, '--group', 'g', '--state', join(base, 's5'), '--volume', `a=${src}`, '--volume', `a=${src}`], /given twice/],
    [['mount', mnt, '--group', 'g', '--state', other, '--volume', `a=${src}`], /belongs to group "someone-else"/],
    [['mount', mnt, '--group', 'g', '--state', join(base, 's6'), '--image', `disk=${join(base, 'd.img')}`], /give its size/],
    [['mount', mnt, '--state', join(base, 's7'), '--volume', `a=${src}`], /needs --group/],
    [['mount', mnt, '--group', 'g', '--state', join(base, 's8'), '--volume', `bad/name=${src}`], /bad volume name/]
  ]
  for (const [args, msg] of cases) {
    const r = await cli(args)
    assert.not.equal(r.code, 0, `${args.join(' ')} exits non-zero`)
    assert.match(r.err, msg, `${args.join(' ')}: ${r.err}`)
    assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`)
  }
  assert.equal(listing(base), before, 'nothing was created')

  // A busy mountpoint: the second mount is refused while the first serves.
  const d = await mount([src, mnt, '--state', join(base, 'state')])
  try {
    const r = await cli(['mount', src, mnt, '--state', join(base, 'state2')])
    assert.not.equal(r.code, 0)
    assert.match(r.err, /busy/)
    assert.not.ok(fs.existsSync(join(base, 'state2')))
    // The same state directory cannot serve two mounts at once.
    const mnt2 = join(base, 'mnt2'); fs.mkdirSync(mnt2)
    const r2 = await cli(['mount', src, mnt2, '--state', join(base, 'state')])
    assert.match(r2.err, /in use by process/)
  } finally {
    await d.stop()
    unstick(mnt)
  }
}))

test('--help documents every verb and flag', async () => {
  const r = await cli(['--help'])
  assert.match(r.out, /mount/)
  assert.match(r.out, /journal/)
  const m = await cli(['mount', '--help'])
  for (const flag of ['--state', '--group', '--volume', '--image']) assert.match(m.out, new RegExp(flag))
})

test.run()
