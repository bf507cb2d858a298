// Absolute paths past PATH_MAX (volume/long-path.ts): split at slashes into
// stretches a call takes, reached through directory fds, fds all closed.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { stretches, withPathSync, withPath } from '../../dist/volume/long-path.js'
import { tmpRoot } from '../apply/env.mjs'

const openFds = () => fs.readdirSync('/proc/self/fd').length

test('stretches cut at slashes, each short enough, and join back to the path', () => {
  const abs = '/' + Array.from({ length: 40 }, (_, i) => `${i}é`.padEnd(250, 'n')).join('/')
  const parts = stretches(abs)
  assert.ok(parts.length >= 3)
  for (const p of parts) assert.ok(Buffer.byteLength(p) <= 4000, `${Buffer.byteLength(p)} bytes`)
  assert.is(parts.join('/'), abs)
  assert.equal(stretches('/short/path'), ['/short/path'])
})

test('a file 8 KiB deep is read, written and listed; no fd is left open', async () => {
  fs.mkdirSync(tmpRoot, { recursive: true })
  const base = fs.mkdtempSync(path.join(tmpRoot, 'replfs-long-'))
  const names = Array.from({ length: 40 }, (_, i) => `${i}`.padEnd(200, 'd'))
  let fd = fs.openSync(base, fs.constants.O_RDONLY)
  for (const n of names) {
    fs.mkdirSync(`/proc/self/fd/${fd}/${n}`)
    const next = fs.openSync(`/proc/self/fd/${fd}/${n}`, fs.constants.O_RDONLY)
    fs.closeSync(fd); fd = next
  }
  fs.writeFileSync(`/proc/self/fd/${fd}/f`, 'deep')
  fs.closeSync(fd)
  const abs = path.join(base, ...names, 'f')
  assert.ok(Buffer.byteLength(abs) > 8000)
  assert.throws(() => fs.readFileSync(abs), /ENAMETOOLONG/)
  const before = openFds()
  assert.is(withPathSync(abs, p => fs.readFileSync(p, 'utf8')), 'deep')
  await withPath(abs, p => fs.promises.writeFile(p, 'deeper'))
  assert.equal(await withPath(path.dirname(abs), p => fs.promises.readdir(p)), ['f'])
  assert.is(withPathSync(abs, p => fs.lstatSync(p)).size, 6)
  assert.throws(() => withPathSync(abs + '-missing', p => fs.readFileSync(p)), /ENOENT/)
  assert.throws(() => withPathSync(path.join(base, 'none', ...names), p => fs.readFileSync(p)), /ENOENT/)
  assert.is(openFds(), before)
  execFileSync('rm', ['-rf', base]) // fs.rm cannot: its paths grow past PATH_MAX
})

test.run()
