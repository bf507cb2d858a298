// timeout: 120
// Records name a file by its path at that point of history, whatever the
// kernel caches: a write through a handle opened before a rename goes to
// the new name; a write to a file that is only reachable through another
// hard link goes to that link; a write to a file unlinked while open is
// nobody's business (no name) and never breaks the replay.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'

test('writes land under the name the file has when they happen', bounded(100_000, async () => {
  const base = tempDir('names')
  const src = join(base, 'src'); const copy = join(base, 'copy'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt); fs.mkdirSync(copy)
  const d = await mount([src, mnt, '--state', state])
  try {
    sh(`python3 - <<'PY'
import os
m = '${mnt}'
# open a, rename it to b, create a new a, write through the first handle
fd = os.open(m + '/a', os.O_CREAT | os.O_RDWR, 0o644)
os.pwrite(fd, b'first', 0)
os.rename(m + '/a', m + '/b')
open(m + '/a', 'w').write('the new a')
os.pwrite(fd, b'FIRST', 0)
os.close(fd)
# two hard links; the name the file was opened by goes; write through the other
open(m + '/h1', 'w').write('linked')
os.link(m + '/h1', m + '/h2')
os.stat(m + '/h2')                     # the kernel now knows both names
fd = os.open(m + '/h1', os.O_RDWR)
os.unlink(m + '/h1')
os.pwrite(fd, b'LINKED', 0)            # through the handle: h2 is the file now
os.close(fd)
with open(m + '/h2', 'r+') as f: f.write('L')
# the same with the kernel's caches against us: the other name was looked
# up last, then removed, while a handle from the first name writes on
import time
open(m + '/k1', 'w').write('cached')
os.link(m + '/k1', m + '/k2')
fd = os.open(m + '/k1', os.O_RDWR)
time.sleep(1.2)                        # past the entry timeout: the next stat looks k2 up
os.stat(m + '/k2')
os.unlink(m + '/k2')
os.pwrite(fd, b'CACHED', 0)            # k1 is the file's only name now
os.close(fd)
# a directory renamed under an open file
os.makedirs(m + '/d1/d2')
fd = os.open(m + '/d1/d2/f', os.O_CREAT | os.O_RDWR, 0o600)
os.rename(m + '/d1', m + '/e1')
os.pwrite(fd, b'moved with its directory', 0)
os.close(fd)
# unlinked while open: written, then gone
fd = os.open(m + '/gone', os.O_CREAT | os.O_RDWR, 0o600)
os.unlink(m + '/gone')
os.pwrite(fd, b'nobody sees this', 0)
os.close(fd)
# replaced while open: the old file's writes go nowhere, the new one is intact
open(m + '/r', 'w').write('old r')
fd = os.open(m + '/r', os.O_RDWR)
open(m + '/r2', 'w').write('new r')
os.rename(m + '/r2', m + '/r')
os.pwrite(fd, b'OLD R', 0)
os.close(fd)
PY`)
    assert.is(fs.readFileSync(join(mnt, 'b'), 'utf8'), 'FIRST')
    assert.is(fs.readFileSync(join(mnt, 'h2'), 'utf8'), 'LINKED')
    assert.is(fs.readFileSync(join(mnt, 'r'), 'utf8'), 'new r')
    assert.is(fs.readFileSync(join(mnt, 'k1'), 'utf8'), 'CACHED')
  } finally {
    const r = await d.stop()
    unstick(mnt)
    assert.equal(r.code, 0, d.err)
  }
  const rep = await cli(['journal', 'replay', state, '--volume', `src=${copy}`])
  assert.equal(rep.code, 0, rep.err)
  assert.equal(snapshot(copy, { exact: true }), snapshot(src, { exact: true }))
}))

test.run()
