// timeout: 150
// The primary's journal segments deleted while it was down, with its
// checkpoint and backing point behind what it had shipped (FAULT_SEED=13
// run 2 of the fault campaign): nothing on the primary shows the loss,
// and it gives the sequences the secondary holds again. The secondary
// knows whom it followed (node and boot): on the same boot the primary's
// backing store holds every write it lost from the journal, so this is
// damage, named, and a full resync (block checksums), not a split brain.
// On another boot (the backing store may lack them) it stays a split
// brain: the secondary's data is never overwritten without the operator.
// The primary's own end mark (journal.end, test/fs/end-mark) names such a
// loss before it connects; the origin rule is for a start without it (a
// state directory too full to make it), so these cases remove it too, but
// the first.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { bounded, unstick } from '../helpers/mount.mjs'
import { layout, startPair, startPrimary, waitSynced, waitFor, stopAll, differences, status, sleep } from '../helpers/pair.mjs'

const port = 17320

function writeFiles (L, prefix, n) {
  for (let i = 0; i < n; i++) fs.writeFileSync(join(L.mnt, 'one', `${prefix}${i}`), `${prefix} ${i} `.repeat(200 + i))
}

/** Many appends to one file: many sequences, few parts for a restart to
 *  re-journal (the primary then holds fewer sequences than the secondary). */
function appendOne (L, n) {
  const fd = fs.openSync(join(L.mnt, 'one', 'log'), 'a')
  try { for (let i = 0; i < n; i++) fs.writeSync(fd, `line ${i}\n`) } finally { fs.closeSync(fd) }
}

/** A pair where the secondary holds more than the primary's checkpoint and
 *  backing point say was shipped (`write` made it so), and the primary's
 *  segments are gone. */
async function losePrimarySegments (L, write, { keepMark = false } = {}) {
  let { sec, pri } = await startPair(L, port)
  writeFiles(L, 'a', 20)
  await waitSynced(L)
  await pri.stop()
  unstick(L.mnt)
  const kept = Object.fromEntries(['checkpoint.cbor', 'backing.cbor'].filter(f => fs.existsSync(join(L.pstate, f))).map(f => [f, fs.readFileSync(join(L.pstate, f))]))
  pri = await startPrimary(L, port)
  // Connected before writing: the kept checkpoint then stands for one that
  // did not move (writes made alone would start a generation it lacks).
  await waitSynced(L)
  write()
  await waitSynced(L)
  const held = (await status(L.sstate)).appliedSeq
  await pri.kill9()
  unstick(L.mnt)
  for (const [f, b] of Object.entries(kept)) fs.writeFileSync(join(L.pstate, f), b)
  const segs = fs.readdirSync(L.pstate).filter(f => f.endsWith('.seg'))
  for (const f of segs) fs.rmSync(join(L.pstate, f))
  if (!keepMark) fs.rmSync(join(L.pstate, 'journal.end'))
  return { sec, held }
}

const named = /damage, not a split brain: the secondary took them from this node, on this boot/

for (const [how, write] of [['it holds more than the secondary', L => writeFiles(L, 'b', 20)], ['the secondary holds more', L => appendOne(L, 150)]]) {
  test(`segments lost on the primary, same boot, after its restart ${how}: damage named, full resync, the copy converges`, bounded(130_000, async () => {
    const L = layout('lost-segment', { vols: ['one'] })
    let sec, pri
    try {
      ({ sec } = await losePrimarySegments(L, () => write(L)))
      pri = await startPrimary(L, port)
      writeFiles(L, 'c', 5)
      await waitSynced(L, 60_000)
      assert.is(differences(L), null)
      assert.ok(named.test(pri.err), pri.err)
      assert.not.match(pri.err, /SPLIT_BRAIN|split brain with/)
      const p = await status(L.pstate)
      assert.ok(p.damage.some(d => /the secondary holds sequences \d+\.\.\d+ of this side's history that this journal no longer has/.test(String(d))), JSON.stringify(p.damage))
    } finally {
      await stopAll(L, pri, sec)
    }
  }))
}

test('with the end mark, the primary names the loss itself at its start: full resync, the copy converges', bounded(130_000, async () => {
  const L = layout('lost-segment-mark', { vols: ['one'] })
  let sec, pri
  try {
    ({ sec } = await losePrimarySegments(L, () => writeFiles(L, 'b', 20), { keepMark: true }))
    pri = await startPrimary(L, port)
    writeFiles(L, 'c', 5)
    await waitSynced(L, 60_000)
    assert.is(differences(L), null)
    assert.match(pri.err, /journal damaged: .*the native core appended through on this boot \(journal\.end\).*: sequences \d+\.\.\d+ lost/)
    assert.match(pri.err, /pair decision: resync, full: journal damage/)
    assert.not.match(pri.err, /SPLIT_BRAIN|split brain with/)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('the same after a reboot of the primary: a split brain (loud), nothing overwritten', bounded(130_000, async () => {
  const L = layout('lost-segment-reboot', { vols: ['one'] })
  let sec, pri
  try {
    let held
    ({ sec, held } = await losePrimarySegments(L, () => appendOne(L, 150)))
    process.env.REPLFS_BOOT_ID = 'another-boot-of-this-machine'
    try { pri = await startPrimary(L, port) } finally { delete process.env.REPLFS_BOOT_ID }
    await waitFor(() => /SPLIT_BRAIN/.test(pri.err), 30_000, 'the split brain refusal')
    assert.not.match(pri.err, named)
    assert.is((await status(L.sstate)).appliedSeq, held, 'the secondary kept what it held')
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test.run()
