// timeout: 120
// Strangers are cheap to serve: before authentication a connection may
// send frames of at most 64 KiB, has 10 s to authenticate, and at most 16
// wait at once (more are closed with a BUSY error frame). 64 hostile
// connections (half idle, half sending a 4 MiB frame) keep serve's resident
// memory bounded (the figures are printed), every one of them is closed
// with a reason, and a real primary still connects and replicates.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { bounded } from '../helpers/mount.mjs'
import { makeEnv, startServe, raw, assertStillServes, sleep } from './env.mjs'

const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

test('64 hostile connections: bounded memory, each closed with a reason, a real primary still connects', bounded(100_000, async () => {
  const E = makeEnv('faults-preauth')
  const port = 17304
  let serve
  const conns = []
  try {
    serve = await startServe(E, port)
    const pid = serve.proc.pid
    await sleep(500)
    const before = rssMiB(pid)
    let peak = before
    const sampler = setInterval(() => { peak = Math.max(peak, rssMiB(pid)) }, 50)
    const big = Buffer.alloc(4 << 20, 0x41)
    const header = Buffer.alloc(8)
    header.writeUInt32BE((16 << 20) - 16, 0) // just under the post-authentication bound
    for (let i = 0; i < 64; i++) {
      const c = await raw(port)
      conns.push(c)
      if (i % 2 === 1) { c.send(header); c.send(big) }
    }
    await sleep(3000)
    const early = conns.map(c => c.frames().find(f => f.t === 'error')?.code ?? (c.closed ? 'closed' : 'open'))
    // The idle ones admitted hit the deadline.
    await Promise.all(conns.map(c => c.waitClosed(15_000)))
    clearInterval(sampler)
    peak = Math.max(peak, rssMiB(pid))
    const codes = conns.map(c => c.frames().find(f => f.t === 'error')?.code ?? (c.closed ? 'closed' : 'open'))
    const count = (list) => list.reduce((m, k) => ({ ...m, [k]: (m[k] ?? 0) + 1 }), {})
    console.log(`serve RSS: ${before.toFixed(1)} MiB before, peak ${peak.toFixed(1)} MiB with 64 hostile connections (+${(peak - before).toFixed(1)} MiB); after 3 s: ${JSON.stringify(count(early))}; in the end: ${JSON.stringify(count(codes))}`)
    assert.ok(peak - before < 48, `resident memory grew by ${(peak - before).toFixed(1)} MiB`)
    assert.ok(codes.every(c => c !== 'open'), `still open: ${JSON.stringify(codes)}`)
    assert.ok(codes.filter(c => c === 'BUSY').length >= 16, `BUSY for the connections past the cap: ${JSON.stringify(count(codes))}`)
    assert.ok(codes.includes('FRAME_TOO_LARGE'), 'a big frame before authentication is refused by size')
    assert.ok(codes.includes('TIMEOUT'), 'an idle stranger is dropped at the deadline')
    assert.is(serve.exited, null)
    // A real primary gets in and replicates.
    await assertStillServes(E, port)
  } finally {
    for (const c of conns) c.socket.destroy()
    await serve?.stop()
  }
}))

test.run()
