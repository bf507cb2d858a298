// timeout: 120
// `--poll-us`: after each reply the lone FUSE reader polls /dev/fuse for the
// next request before it sleeps (src/native/reader_wait.c). Either way every
// request is served: a stream of small writes (the polling path whenever a
// CPU is idle; the test cannot force one), writes
// after idle gaps longer than the window (the sleeping path), and a prompt
// unmount while the reader waits. The option reaches the core: the reader's
// /dev/fuse descriptor is non-blocking exactly when polling is on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, cli, isMounted, bounded } from '../helpers/mount.mjs'

const O_NONBLOCK = 0o4000

/** The open flags of the daemon's /dev/fuse descriptors (fdinfo, octal). */
function fuseFdFlags (pid) {
  const flags = []
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = ''
    try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue }
    if (target !== '/dev/fuse') continue
    const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
    flags.push(parseInt(/^flags:\s+([0-7]+)/m.exec(info)[1], 8))
  }
  return flags
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

for (const pollUs of ['10000', '0']) {
  test(`--poll-us ${pollUs}: small writes back to back and after idle gaps, then a prompt stop`, bounded(90_000, async () => {
    const base = tempDir(`poll${pollUs}`)
    const src = join(base, 'src'); const mnt = join(base, 'mnt')
    fs.mkdirSync(src); fs.mkdirSync(mnt)
    const d = await mount([src, mnt, '--state', join(base, 'state'), '--poll-us', pollUs])
    try {
      const flags = fuseFdFlags(d.proc.pid)
      assert.ok(flags.length >= 1, 'the daemon holds /dev/fuse')
      assert.equal(flags.every(f => (f & O_NONBLOCK) !== 0), pollUs !== '0', `O_NONBLOCK on /dev/fuse: ${flags.map(f => f.toString(8))}`)

      const expect = Buffer.alloc(2000 * 64)
      const fd = fs.openSync(join(mnt, 'stream'), 'w+')
      for (let i = 0; i < 2000; i++) {            // one request each, the next right after the reply
        const rec = Buffer.alloc(64, i & 0xff)
        rec.writeUInt32LE(i, 0)
        rec.copy(expect, i * 64)
        fs.writeSync(fd, rec, 0, rec.length, i * 64)
      }
      for (let i = 0; i < 5; i++) {               // gaps far beyond any window: the reader sleeps
        await sleep(40)
        fs.writeFileSync(join(mnt, `after-gap-${i}`), `gap ${i}`)
      }
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      assert.ok(fs.readFileSync(join(src, 'stream')).equals(expect), 'the backing file holds every write, in place')
      for (let i = 0; i < 5; i++) assert.equal(fs.readFileSync(join(src, `after-gap-${i}`), 'utf8'), `gap ${i}`)
      await sleep(40)                             // stopped while the reader waits
      const r = await d.stop('SIGTERM', 15_000)
      assert.equal(r.code, 0, `clean exit: ${d.err}`)
      assert.not.ok(isMounted(mnt), 'unmounted')
      const j = await cli(['journal', 'inspect', join(base, 'state'), '--json'])
      assert.equal(j.code, 0, j.err)
      const info = JSON.parse(j.out)
      assert.ok(info.records >= 2005, `every write journalled: ${info.records} records`)
      assert.ok(info.segments.every(s => s.damage === null), 'no damage')
    } finally {
      await d.stop('SIGKILL')
      unstick(mnt)
    }
  }))
}

test('--poll-us out of range: a usage error naming the flag', async () => {
  const base = tempDir('pollbad')
  const src = join(base, 'src'); const mnt = join(base, 'mnt')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  for (const bad of ['-1', '1.5', 'fast', '10001']) {
    const r = await cli(['mount', src, mnt, '--state', join(base, 'state'), '--poll-us', bad])
    assert.not.equal(r.code, 0)
    assert.match(r.err, /--poll-us .*whole number of microseconds/, r.err)
    assert.not.ok(fs.existsSync(join(base, 'state')), 'nothing created')
  }
})

test.run()
