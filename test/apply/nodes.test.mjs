// timeout: 60
// Found by the network fuzzer (scripts/fuzz.mjs), each first reproduced here:
// - a record made a block device node in the copy (mknod is replicated data), and a write
//   record then wrote through it to the device: bytes outside every volume. Data records
//   now act only on regular files; any other node is refused before it is opened. Here the
//   device is a loop device over a canary file that must stay as made.
// - a file written, then replaced by a symlink (or a fifo), made the next flush fail for good
//   (fsync of the name refused, as APPLY_BLOCKED: the copy retried forever and refused every
//   primary). A name that no longer leads to the file written has nothing to sync.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { applyRecord } from '../../dist/apply/apply.js'
import { ApplyTarget } from '../../dist/apply/target.js'
import { makeEnv, rejects, bytes, DIR, tmpRoot } from './env.mjs'

let env
const apply = (r) => applyRecord(env.vols, { vol: DIR, ...r })

test.before.each(async () => { env = await makeEnv() })
test.after.each(async () => {
  env.assertOutsideUntouched()
  await env.cleanup()
})

test('a block device node in the copy: write, truncate and fsync through it are refused, the device is untouched', async () => {
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'replfs-canary-'))
  const canary = path.join(dir, 'canary.img')
  fs.writeFileSync(canary, Buffer.alloc(64 * 1024, 0xc5))
  const loop = execFileSync('losetup', ['-f', '--show', canary], { encoding: 'utf8' }).trim()
  try {
    await apply({ kind: 'mknod', path: 'blk', mode: 0o060600, rdev: fs.statSync(loop).rdev })
    assert.ok(fs.lstatSync(path.join(env.root, 'blk')).isBlockDevice(), 'the node itself is replicated data')
    await rejects(apply({ kind: 'write', path: 'blk', off: 0, data: bytes('pwned') }), 'APPLY_FAILED', /"blk" is a block device, not a regular file/)
    await rejects(apply({ kind: 'truncate', path: 'blk', size: 0 }), 'APPLY_FAILED', /block device/)
    await rejects(apply({ kind: 'fsync', path: 'blk' }), 'APPLY_FAILED', /block device/)
    const dev = fs.readFileSync(loop) // through the device: its page cache too
    assert.ok(dev.every(b => b === 0xc5), 'the device was written')
  } finally {
    execFileSync('losetup', ['-d', loop])
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('character devices, fifos and sockets take no data either; regular files and directories still do', async () => {
  await apply({ kind: 'mknod', path: 'null', mode: 0o020666, rdev: (1 << 8) | 3 })
  await apply({ kind: 'mknod', path: 'fifo', mode: 0o010644, rdev: 0 })
  await apply({ kind: 'mknod', path: 'sock', mode: 0o140644, rdev: 0 })
  for (const [p, what] of [['null', 'a character device'], ['fifo', 'a fifo'], ['sock', 'a socket']]) {
    await rejects(apply({ kind: 'write', path: p, off: 0, data: bytes('x') }), 'APPLY_FAILED', new RegExp(`is ${what}, not a regular file`))
  }
  await apply({ kind: 'create', path: 'f', mode: 0o644 })
  await apply({ kind: 'write', path: 'f', off: 0, data: bytes('ok') })
  await apply({ kind: 'fsync', path: 'f' })
  await apply({ kind: 'mkdir', path: 'd', mode: 0o755 })
  await apply({ kind: 'fsync', path: 'd' })
  assert.is(fs.readFileSync(path.join(env.root, 'f'), 'utf8'), 'ok')
})

test('a file written, then replaced by a symlink, a fifo or a file in place of its parent: the flush has nothing to sync there and succeeds', async () => {
  const target = new ApplyTarget(env.vols, env.specs)
  const t = (r) => target.apply({ vol: DIR, ...r })
  await t({ kind: 'mkdir', path: 'dir', mode: 0o755 })
  for (const p of ['a', 'b', 'dir/c']) {
    await t({ kind: 'create', path: p, mode: 0o644 })
    await t({ kind: 'write', path: p, off: 0, data: bytes('data') })
  }
  await t({ kind: 'unlink', path: 'a' })
  await t({ kind: 'symlink', path: 'a', target: '../outside/secret' })
  await t({ kind: 'unlink', path: 'b' })
  await t({ kind: 'mknod', path: 'b', mode: 0o010644, rdev: 0 })
  await t({ kind: 'state', path: 'dir', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, target: '', whole: true })
  await target.flush()
  await target.flush() // and nothing is left listed to fail later
})

test.run()
