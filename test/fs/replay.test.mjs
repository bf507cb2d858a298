// timeout: 240
// The end-to-end property of capture: after a mixed workload over a group
// of volumes, replaying the journal onto copies of the initial backing
// directories yields trees identical to the backing directories.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'
import { runWorkload } from './workload.mjs'

const hashFile = f => createHash('sha256').update(fs.readFileSync(f)).digest('hex')

test('replaying the journal onto the initial copies reproduces the volumes', bounded(200_000, async () => {
  const base = tempDir('replay')
  const v1 = join(base, 'v1'); const v2 = join(base, 'v2'); const img = join(base, 'disk.img')
  const mnt = join(base, 'mnt'); const state = join(base, 'state')
  fs.mkdirSync(mnt)
  // Initial content, copied before the mount: replay starts from it.
  fs.mkdirSync(join(v1, 'sub'), { recursive: true }); fs.writeFileSync(join(v1, 'a'), 'initial a')
  fs.mkdirSync(v2); fs.writeFileSync(join(v2, 'b'), Buffer.alloc(70_000, 7))
  fs.writeFileSync(img, Buffer.alloc(1 << 20, 1))
  sh(`cp -a ${v1} ${base}/c1 && cp -a ${v2} ${base}/c2 && cp ${img} ${base}/c.img`)

  const d = await mount([mnt, '--group', 'g', '--state', state, '--volume', `one=${v1}`, '--volume', `two=${v2}`, '--image', `disk=${img}`])
  let counts
  try {
    counts = runWorkload(mnt, ['one', 'two'], { steps: 500, seed: 42, image: 'disk', imageSize: 1 << 20 })
  } finally {
    const r = await d.stop()
    unstick(mnt)
    assert.equal(r.code, 0, d.err)
  }
  assert.ok(counts.write > 50 && counts.rename > 5 && counts.image > 20, JSON.stringify(counts))

  const rep = await cli(['journal', 'replay', state, '--volume', `one=${base}/c1`, '--volume', `two=${base}/c2`, '--image', `disk=${base}/c.img`])
  assert.equal(rep.code, 0, rep.err)
  // .fuse_hidden files (unlinked while open) are gone from both by now.
  assert.equal(snapshot(`${base}/c1`), snapshot(v1))
  assert.equal(snapshot(`${base}/c2`), snapshot(v2))
  assert.equal(hashFile(`${base}/c.img`), hashFile(img))
}))

test.run()
