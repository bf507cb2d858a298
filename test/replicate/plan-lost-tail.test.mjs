// A primary whose journal lost its end (a truncated or deleted segment,
// found at open, on this boot) and a secondary holding sequences past it in
// the generation they share: that is this side's own history, lost here,
// so the pair resyncs in full (block checksums) and does not refuse it as a
// split brain. A secondary that went on in a generation of its own, an old
// primary's writes in an older generation, or a journal that lost nothing:
// still a split brain.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { historyOf, startGeneration } from '../../dist/journal/generations.js'
import { planSession } from '../../dist/replicate/plan.js'

const w = i => ({ kind: 'write', vol: 0, path: 'f', off: i, data: Buffer.alloc(10, i) })

async function primary ({ lost = true, thisBoot = true } = {}) {
  const j = await Journal.open(join(tempDir('plan-lost'), 'state'), { group: 'g' })
  for (let i = 0; i < 10; i++) j.appendRecords([w(i)], false)
  if (lost) j.tailLostIn = j.checkpoint.generation
  j.tailLostOnThisBoot = lost && thisBoot
  return j
}
const state = (j, applied, history) => ({ t: 'state', applied, hash: Buffer.alloc(16, 9), generation: history[history.length - 1].id, consistent: true, history })

test('the secondary ahead in the generation whose end this journal lost: a full resync', async () => {
  const j = await primary()
  const p = await planSession({ journal: j, lastAssigned: 10, acked: 5, tracking: false }, state(j, 14, historyOf(j.checkpoint)))
  assert.is(p.kind, 'full', JSON.stringify(p))
  assert.match(p.why, /damage, not a split brain/)
  await j.close()
})

test('the same without the loss, or not on this boot: split brain', async () => {
  for (const opts of [{ lost: false }, { thisBoot: false }]) {
    const j = await primary(opts)
    const p = await planSession({ journal: j, lastAssigned: 10, acked: 5, tracking: false }, state(j, 14, historyOf(j.checkpoint)))
    assert.is(p.kind, 'split', JSON.stringify(opts))
    await j.close()
  }
})

test('a secondary that wrote in a generation of its own: split brain even after a loss here', async () => {
  const j = await primary()
  const theirs = startGeneration(historyOf(j.checkpoint), 'theirs00000000', 8)
  const p = await planSession({ journal: j, lastAssigned: 10, acked: 5, tracking: false }, state(j, 12, theirs))
  assert.is(p.kind, 'split')
  await j.close()
})

test('an old primary ahead in an older generation than the one this journal lost: split brain', async () => {
  const j = await primary()
  const old = historyOf(j.checkpoint)
  // This side was promoted at 6 (its own generation); the old primary went on in the old one.
  await j.setCheckpoint({ generation: 'mine0000000000', history: startGeneration(old, 'mine0000000000', 6) })
  j.tailLostIn = 'mine0000000000'
  const p = await planSession({ journal: j, lastAssigned: 10, acked: 5, tracking: false }, state(j, 9, old))
  assert.is(p.kind, 'split', JSON.stringify(p))
  await j.close()
})

// The same loss with no trace here (a deleted segment, the checkpoint and
// backing point behind what was shipped): the secondary's word that it
// followed this node on this boot (its origin) is the evidence.
const me = 'node1@boot1'
const withOrigin = (st, origin, extra = {}) => ({ ...st, origin, ...extra })

test('no trace here, the secondary followed this node on this boot: a full resync, the loss named', async () => {
  const j = await primary({ lost: false })
  for (const applied of [14, 8]) { // ahead of this journal, or behind it with another batch there
    const p = await planSession({ journal: j, lastAssigned: 10, acked: 5, tracking: false, origin: me }, withOrigin(state(j, applied, historyOf(j.checkpoint)), me))
    assert.is(p.kind, 'full', JSON.stringify(p))
    assert.match(p.why, /damage, not a split brain: the secondary took them from this node, on this boot/)
    assert.equal(p.lost, { from: 6, to: applied })
  }
  await j.close()
})

test('no trace here and no such word (another boot, another node, demoted, own generation, nothing past the ack): as before', async () => {
  const j = await primary({ lost: false })
  const h = historyOf(j.checkpoint)
  const cases = [
    [withOrigin(state(j, 14, h), 'node1@boot0'), 'split'],
    [withOrigin(state(j, 14, h), 'node2@boot1'), 'split'],
    [state(j, 14, h), 'split'],
    [withOrigin(state(j, 14, h), me, { demoted: 14 }), 'roll-back'], // its own unshipped writes (fast failback)
    [withOrigin(state(j, 12, startGeneration(h, 'theirs00000000', 8)), me), 'split'],
    [withOrigin(state(j, 4, h), me), 'refuse'] // behind the ack with another hash: not a loss of this journal's
  ]
  for (const [st, kind] of cases) {
    const p = await planSession({ journal: j, lastAssigned: 10, acked: 5, tracking: false, origin: me }, st)
    assert.is(p.kind, kind, JSON.stringify(st.origin) + ' ' + JSON.stringify(p))
  }
  await j.close()
})

test.run()
