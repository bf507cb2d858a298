// `replfs promote` and `replfs demote`: a secondary becomes the primary (a
// new data generation starts at its next sequence; `replfs mount` is then
// started on its volumes), a primary becomes a secondary (unmounted after
// draining to its peer; `replfs serve` is then started on its volumes).
// Both work on the state directory: a daemon running on it is stopped
// first. The pair finds at its next connect where each side stands
// (replicate/pair-state.ts): a swap loses nothing and copies nothing again.
import type { Command } from 'commander'
import fs from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, replError } from '../core/errors.js'
import { Journal } from '../journal/journal.js'
import { newGeneration } from '../journal/checkpoint.js'
import { historyOf, startGeneration } from '../journal/generations.js'
import { openVolumes, closeVolumes } from '../volume/volume.js'
import { ApplyTarget } from '../apply/target.js'
import { Secondary, rollbackFile } from '../replicate/receiver.js'
import { archiveSplitBrain } from '../replicate/split-brain.js'
import { clearFailbackMarks, writeDemoted } from '../replicate/restated.js'
import { collectSince, describeReport, type ChangeReport } from '../replicate/divergence.js'
import { stateRole, writeStateRole } from './state-role.js'
import { openPrimary } from './primary.js'
import { groupOf, runningStatus, stopDaemon, volumeFlags, type Log } from './role-change.js'
import { writeAppliedCursor } from '../journal/applied-cursor.js'

const log: Log = line => process.stderr.write(`replfs: ${line}\n`)

async function run (fn: () => Promise<void>): Promise<void> {
  try {
    await fn()
  } catch (err) {
    process.stderr.write(`replfs: error: ${describe(err)}\n`)
    process.exitCode = 1
  }
}

export function registerRoles (program: Command): void {
  program.command('promote')
    .description('make a secondary the primary: stop taking the old primary\'s stream and start a new data generation')
    .requiredOption('--state <dir>', 'the secondary\'s state directory')
    .option('--force', 'promote even while the old primary is connected (it must be unreachable or about to be stopped), or a copy a resync left inconsistent')
    .addHelpText('after', `
A running \`replfs serve\` on DIR is stopped first (its read-only mount goes
with it). Refused while the old primary is connected to it: demote that one
first (\`replfs demote\` on its host), or give --force when it is unreachable.
Then start the primary on the same volumes: \`replfs mount ... --state DIR\`
(the command is printed), with --peer at the old primary once it serves as a
secondary. Writes it holds that the old primary never sent make the pair
refuse as a split brain: nothing is ever merged or dropped silently.`)
    .action(async (flags: { state: string, force?: boolean }) => run(() => promote(resolve(flags.state), flags.force === true)))

  program.command('demote')
    .description('make a primary a secondary: drain to the peer, unmount, and take the other side\'s stream from then on')
    .requiredOption('--state <dir>', 'the primary\'s state directory')
    .addHelpText('after', `
A running \`replfs mount\` on DIR is stopped first: it unmounts (writes stop:
applications see the mount go), then waits up to 20 s for the secondary to
acknowledge everything, then flushes. Then start the secondary on the same
volumes: \`replfs serve ... --state DIR\` (the command is printed).`)
    .action(async (flags: { state: string }) => run(() => demote(resolve(flags.state))))
}

export async function promote (state: string, force: boolean, hints = true): Promise<void> {
  const role = await stateRole(state)
  if (role !== 'secondary') throw replError('USAGE', `${state} is ${role === null ? 'not a replfs state directory' : `a ${role}'s state directory`}: promote is for a secondary`)
  const spec = await groupOf(state)
  const running = await runningStatus(state)
  if (running && running.peerState !== 'waiting') {
    if (!force) {
      throw replError('BUSY', `the old primary is connected to this secondary (${String(running.peer)}, ${String(running.peerState)}): promoting now would make two primaries`,
        'demote it first (`replfs demote --state DIR` on its host) or stop it; give --force only when it is unreachable')
    }
    log(`--force: promoting while the old primary (${String(running.peer)}) is connected; what it writes from now on is a split brain`)
  }
  await stopDaemon(state, 'SIGTERM', log)

  const journal = await Journal.open(state, { group: spec.group })
  let applied: number
  let id: string
  try {
    // Batches stored but not applied yet are applied first: they were sent
    // by the old primary and are part of its history.
    const vols = await openVolumes(spec.volumes)
    const identity = { role: 'secondary' as const, group: spec.group, node: '', volumes: spec.volumes.map(v => ({ name: v.name, kind: v.kind, size: v.size })), secret: Buffer.alloc(0) }
    const secondary = new Secondary(journal, new ApplyTarget(vols, spec.volumes), identity, log)
    const n = await secondary.recover()
    if (n > 0) log(`applied ${n} records received before the promotion`)
    const st = secondary.status()
    await secondary.close()
    await closeVolumes(vols)
    applied = st.appliedSeq
    if (!st.consistent && !force) {
      throw replError('USAGE', `the copy in ${state} is not consistent (a resync did not finish${st.applyError ? `; apply stuck at ${st.applyError.seq}` : ''}): as a primary it would serve a state no primary ever had`,
        'let the resync finish first; --force promotes it anyway')
    }
    if (journal.lastSeq > applied) throw replError('APPLY_BLOCKED', `the journal holds sequences ${applied + 1}..${journal.lastSeq} that could not be applied`, 'fix the copy\'s storage, start `replfs serve` once to apply them, then promote')
    const hash = await journal.hashAt(applied)
    id = newGeneration()
    const history = startGeneration(historyOf(journal.checkpoint), id, applied + 1)
    // The old primary holds every sequence up to here (it sent them): that
    // is what its peer acknowledged, from this side's point of view.
    await journal.setCheckpoint({ generation: id, history, acked: applied, ackedHash: hash ?? undefined, appliedSeq: applied })
    fs.rmSync(join(state, 'backing.cbor'), { force: true }) // a primary's redo point from an earlier life of this directory
    fs.rmSync(join(state, rollbackFile), { force: true }) // a rolled back copy's list: a primary restates nothing
    clearFailbackMarks(state) // what a demote and a recovery recorded for a failback of this side
    const archived = await archiveSplitBrain(state)
    if (archived) log(`the split brain recorded here is resolved in favour of this side (record kept in ${archived})`)
    await writeStateRole(state, 'primary')
  } finally {
    await journal.close()
  }
  console.log(`replfs: promoted: ${state} is a primary from sequence ${applied + 1}, data generation ${id}`)
  if (!hints) return
  console.log('start it on its volumes (add --peer HOST:PORT of the old primary once it serves as a secondary):')
  console.log(`  replfs mount MOUNTPOINT --group ${spec.group} --state ${state} ${volumeFlags(spec)}`)
}

export async function demote (state: string, hints = true): Promise<void> {
  const role = await stateRole(state)
  if (role !== 'primary') throw replError('USAGE', `${state} is ${role === null ? 'not a replfs state directory' : `a ${role}'s state directory`}: demote is for a primary`)
  const spec = await groupOf(state)
  const { last, unshipped } = await demoteState(state, spec, log)
  console.log(`replfs: demoted: ${state} is a secondary at sequence ${last}`)
  if (unshipped) {
    console.log(`unshipped: the secondary had not acknowledged sequences ${unshipped.from}..${unshipped.to} (${unshipped.bytesWritten} bytes written in ${unshipped.files.length + unshipped.filesOmitted} files):`)
    for (const line of describeReport(unshipped)) console.log(line)
    console.log('if the other side was promoted without them, they are rolled back from its data when it connects,')
    console.log(`saved first in ${state}/discarded-TIME/ (its log says what), except parts an unclean stop's recovery re-journalled that it holds as they are`)
  }
  if (!hints) return
  console.log('start it on its volumes; the new primary resumes from here:')
  console.log(`  replfs serve --listen HOST:PORT --group ${spec.group} --state ${state} ${volumeFlags(spec)}`)
}

/** The primary's state becomes a secondary's at its last sequence (also
 *  the first step of `resolve` on a primary). Returns that sequence. */
export async function demoteState (state: string, spec: Awaited<ReturnType<typeof groupOf>>, log: Log): Promise<{ last: number, unshipped: ChangeReport | null }> {
  await stopDaemon(state, 'SIGUSR2', log)
  // The recovery a mount runs (torn tail, power loss, an unclean stop's
  // in-flight parts re-journalled): the journal then holds every change.
  const p = await openPrimary(spec, state, log)
  try {
    if (p.owed) {
      throw replError('USAGE', `${state}: ${p.owed.message}: the journal does not hold every change yet`,
        'free space in the state directory (or start the primary until status shows no journal error), then demote')
    }
    if (!p.dirty.empty) {
      throw replError('USAGE', `${state} holds changes tracked outside its journal (the journal overflowed): they exist only on this side's volumes`,
        'start the primary again with its --peer until the secondary caught up (status: no TRACKING), then demote')
    }
    const last = p.journal.lastSeq
    const acked = p.journal.checkpoint.acked
    if (acked < last) log(`the secondary had not acknowledged sequences ${acked + 1}..${last}: if it is promoted, they are this side's own writes (rolled back from its data at the failback and saved, or a split brain where this side wrote alone)`)
    const unshipped = acked < last ? (await collectSince(p.journal, acked + 1, last, spec.volumes.map(v => v.name))).report : null
    writeAppliedCursor(state, last, true)
    await p.journal.setCheckpoint({ appliedSeq: last })
    // The operator's word that this side gives way: if the other side was
    // promoted without its last writes, they are rolled back at the
    // failback (replicate/restated.ts), saved, never silently.
    await writeDemoted(state, { at: last, acked, time: new Date().toISOString() })
    await writeStateRole(state, 'secondary')
    return { last, unshipped }
  } finally {
    await p.journal.close()
  }
}
