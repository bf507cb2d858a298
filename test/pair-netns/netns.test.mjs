// timeout: 120
// The across-hosts case: a secondary in one network namespace, a primary
// mount in another, joined only by a veth pair (see ns.mjs for why the
// primary is entered with nsenter). A mixed workload over two directory
// volumes and an image volume replicates until the copy is identical; then
// the link is cut while writes go on (the primary keeps serving them, the
// dead peer is noticed), restored, and the pair resumes and ends identical.
// If namespaces cannot be made here the test fails and says why.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, unstick } from '../helpers/mount.mjs'
import { layout, waitSynced, differences, status, sleep, waitFor } from '../helpers/pair.mjs'
import { runWorkload } from '../fs/workload.mjs'
import { createHosts, removeHosts, linkDown, linkUp, nsDaemon } from './ns.mjs'

const PORT = 17250
const imageSize = 4 << 20

const volArgs = (L, side) => [
  ...L.vols.flatMap(v => ['--volume', `${v}=${L[side][v]}`]),
  '--image', `${L.image.name}=${L[side][L.image.name]}:${L.image.size}`
]

test('two namespaces over a veth pair: replicate, cut the link during writes, resume, identical', bounded(110_000, async () => {
  const H = createHosts() // throws (test fails) with the reason if this machine cannot
  const L = layout('netns', { vols: ['one', 'two'], image: { name: 'disk', size: imageSize } })
  const secret = join(L.base, 'secret')
  fs.writeFileSync(secret, 'netns-pair-shared-secret-0123456789\n', { mode: 0o600 })
  fs.writeFileSync(join(L.p.one, 'before'), 'data from before the pair')
  let sec, pri
  try {
    sec = await nsDaemon(['ip', 'netns', 'exec', H.s], ['serve', '--listen', `${H.ipS}:${PORT}`, '--state', L.sstate, '--group', 'g', ...volArgs(L, 's'), '--secret-file', secret], { readyWord: 'listening' })
    assert.match(sec.out, new RegExp(`listening on ${H.ipS.replace(/\./g, '\\.')}:${PORT}`))
    // (Reachability from the host proves nothing here: this sandbox's host
    // namespace accepts outgoing TCP to any address. The peer addresses each
    // side reports, below, show the traffic went over the veth pair.)
    pri = await nsDaemon(['nsenter', `--net=/run/netns/${H.p}`], ['mount', L.mnt, '--group', 'g', '--state', L.pstate, ...volArgs(L, 'p'), '--peer', `${H.ipS}:${PORT}`, '--secret-file', secret], { readyWord: 'ready' })

    // 1. Initial sync and a workload, then identical.
    await waitSynced(L, 30_000)
    const counts = runWorkload(L.mnt, ['one', 'two'], { steps: 200, seed: 21, image: 'disk', imageSize })
    assert.ok(counts.write > 20, JSON.stringify(counts))
    let { p } = await waitSynced(L, 30_000)
    assert.is(p.peer, `${H.ipS}:${PORT}`)
    assert.is(differences(L), null)
    const s = await status(L.sstate)
    assert.match(String(s.peer), new RegExp(`^${H.ipP.replace(/\./g, '\\.')}:`), `the secondary sees the primary at its namespace address: ${s.peer}`)

    // 2. Cut the link while writing; writes keep returning.
    const connectsBefore = (pri.err.match(/connected to secondary/g) ?? []).length
    linkDown(H)
    const cutAt = Date.now()
    let seed = 100
    while (Date.now() - cutAt < 13_000) { // past the dead-peer timeout (10 s)
      const t0 = Date.now()
      runWorkload(L.mnt, ['one', 'two'], { steps: 15, seed: seed++, image: 'disk', imageSize })
      assert.ok(Date.now() - t0 < 5000, 'writes stall while the link is down (async mode must not wait for the peer)')
      await sleep(300)
    }
    p = await status(L.pstate)
    assert.ok(p.lagRecords > 0, `the journal holds the writes made while cut: ${JSON.stringify(p)}`)
    assert.is.not(p.peerState, 'streaming', `the dead peer was noticed: ${p.peerState}`)
    assert.ok(p.lastError, 'the primary says why it is not streaming')

    // 3. Restore; more writes; resume and identical.
    linkUp(H)
    runWorkload(L.mnt, ['one', 'two'], { steps: 40, seed: seed++, image: 'disk', imageSize })
    ;({ p } = await waitSynced(L, 45_000))
    assert.is(differences(L), null)
    const connectsAfter = (pri.err.match(/connected to secondary/g) ?? []).length
    assert.ok(connectsAfter > connectsBefore, `the primary reconnected:\n${pri.err.slice(-1500)}`)
    assert.is(pri.exited, null); assert.is(sec.exited, null)
  } finally {
    await pri?.stop()
    unstick(L.mnt)
    await sec?.stop()
    removeHosts(H)
  }
  assert.is(differences(L), null)
  // Nothing left behind.
  const left = (await import('node:child_process')).execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  assert.not.ok(left.includes(H.p) || left.includes(H.s), `namespaces left: ${left}`)
}))

test.run()
