// timeout: 90
// A batch the secondary refuses must leave no trace that outlives the
// connection: after a real pair replicated and its primary stopped, a client
// holding the secret sends a batch that continues the secondary's history
// (right sequence, right previous hash, taken from the state message) but
// whose record escapes the volume. It is refused with PATH_ESCAPE. Then:
//   1. the real primary comes back and resumes (no SPLIT_BRAIN: the copy's
//      history is still the primary's);
//   2. the secondary restarted is still able to start (its recovery does
//      not re-apply the refused batch and die on it);
//   3. none of the refused batch's records is applied: the copy stays at a
//      batch boundary (DESIGN.md: a prefix of the history at a batch
//      boundary; the refusal itself says "nothing was applied").
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, unstick } from '../helpers/mount.mjs'
import { makeEnv, startServe, startPrimary, primaryClient, batch, bytes, waitFor, status, sleep, zeroHash } from './env.mjs'

async function pairedThenRefused (prefix, port) {
  const E = makeEnv(prefix)
  const serve = await startServe(E, port)
  let pri
  try {
    pri = await startPrimary(E, port)
    fs.writeFileSync(join(E.mnt, 'data', 'a'), 'first')
    const p = await waitFor(async () => {
      const s = await status(E.pstate)
      return s.peerState === 'streaming' && s.lagRecords === 0 && !s.resync && fs.existsSync(join(E.sdata, 'a')) && s
    }, 20_000, 'the pair in sync')
    await pri.stop(); unstick(E.mnt); pri = null
    await waitFor(async () => (await status(E.sstate)).peerState === 'waiting', 5000, 'serve idle')
    const c = await primaryClient(E, port)
    assert.is(c.state.applied, p.lastSeq, 'state names the applied sequence')
    c.conn.send({ t: 'batch', b: batch([{ kind: 'write', vol: 0, path: '../x', off: 0, data: bytes('pwned') }], { seq: c.state.applied + 1, prev: c.state.hash }) })
    const why = await Promise.race([c.closed, sleep(5000)])
    assert.match(String(why?.message), /PATH_ESCAPE/)
    assert.is(E.outsideChanges(), null)
    await waitFor(async () => (await status(E.sstate)).peerState === 'waiting', 5000, 'serve idle')
    return { E, serve }
  } catch (err) {
    await pri?.stop(); unstick(E.mnt)
    await serve.stop()
    throw err
  }
}

test('the real primary resumes after a refused batch (no split brain)', bounded(40_000, async () => {
  const { E, serve } = await pairedThenRefused('faults-refused-resume', 17202)
  let pri
  try {
    pri = await startPrimary(E, 17202)
    fs.writeFileSync(join(E.mnt, 'data', 'b'), 'second')
    const s = await waitFor(async () => {
      const s = await status(E.pstate)
      if (s.lastError && /SPLIT_BRAIN/.test(s.lastError)) return s // refused: fail now, not at the timeout
      return s.peerState === 'streaming' && s.lagRecords === 0 && fs.existsSync(join(E.sdata, 'b')) && s
    }, 20_000, 'the primary to resume after the refused batch').catch(err => {
      throw new Error(`${err.message}\nprimary log:\n${pri.err.slice(-1500)}\nserve log:\n${serve.err.slice(-1500)}`)
    })
    assert.not.match(String(s.lastError), /SPLIT_BRAIN/, `the primary takes the copy for diverged after a batch the copy refused: ${s.lastError}`)
    assert.is(fs.readFileSync(join(E.sdata, 'b'), 'utf8'), 'second')
  } finally {
    await pri?.stop(); unstick(E.mnt)
    await serve.stop()
  }
}))

test('the secondary restarts after a refused batch', bounded(40_000, async () => {
  const { E, serve } = await pairedThenRefused('faults-refused-restart', 17203)
  await serve.stop()
  assert.is(serve.exited.code, 0, `serve stopped cleanly: ${serve.err}`)
  let again
  try {
    again = await startServe(E, 17203).catch(err => { throw new Error(`serve does not start again after a refused batch: ${err.message}`) })
    assert.is(E.outsideChanges(), null)
    const s = await status(E.sstate)
    assert.ok(s.appliedSeq >= 1)
  } finally {
    await again?.stop()
  }
}))

test('a refused batch applies none of its records', bounded(20_000, async () => {
  const E = makeEnv('faults-refused-partial')
  const serve = await startServe(E, 17204)
  try {
    const c = await primaryClient(E, 17204)
    c.conn.send({ t: 'rebase', seq: 1, prev: zeroHash, generation: 'attacker-gen', full: false })
    c.conn.send({ t: 'consistent', seq: 0 })
    c.conn.send({ t: 'batch', b: batch([
      { kind: 'create', vol: 0, path: 'partial', mode: 0o644 },
      { kind: 'write', vol: 0, path: '../x', off: 0, data: bytes('pwned') }
    ]) })
    const why = await Promise.race([c.closed, sleep(5000)])
    assert.match(String(why?.message), /PATH_ESCAPE/)
    await sleep(200)
    const s = await status(E.sstate)
    assert.is(s.appliedSeq, 0, 'the applied cursor is inside the refused batch')
    assert.not.ok(fs.existsSync(join(E.sdata, 'partial')), 'the first record of the refused batch was applied')
    assert.is(E.outsideChanges(), null)
  } finally {
    await serve.stop()
  }
}))

test.run()
