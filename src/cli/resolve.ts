// `replfs diverged` and `replfs resolve --discard-local`: the way out of a
// split brain. `diverged` prints what each side changed since the common
// point (recorded on both sides when the pair refused). `resolve
// --discard-local` on the side that gives its writes up: they are saved
// first (its journal segments, and its copies of the files they touched),
// then the side becomes a secondary rolled back to the common point, whose
// copy the primary brings to its own by comparing block checksums: only
// blocks that differ are sent.
import type { Command } from 'commander'
import fs, { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, replError } from '../core/errors.js'
import { Journal } from '../journal/journal.js'
import { readCheckpoint, writeCheckpoint } from '../journal/checkpoint.js'
import { clipHistory, historyOf } from '../journal/generations.js'
import { segmentSuffix } from '../journal/segments.js'
import { describeReport, type Rollback } from '../replicate/divergence.js'
import { clearFailbackMarks } from '../replicate/restated.js'
import { describeDiscarded, saveDiscarded, type Discarded } from './discard.js'
import { reportBytesMax } from '../replicate/messages.js'
import { rollbackFile } from '../replicate/receiver.js'
import { archiveSplitBrain, loadSplitBrain } from '../replicate/split-brain.js'
import { stateRole, writeStateRole } from './state-role.js'
import { demoteState } from './roles.js'
import { groupOf, stopDaemon, volumeFlags, type Log } from './role-change.js'
import { writeAppliedCursor } from '../journal/applied-cursor.js'

const log: Log = line => process.stderr.write(`replfs: ${line}\n`)

export function registerResolve (program: Command): void {
  program.command('diverged')
    .description('after a split brain: what each side changed since the common point, per file')
    .requiredOption('--state <dir>', 'state directory of either side')
    .option('--json', 'machine-readable output')
    .action(async (flags: { state: string, json?: boolean }) => {
      try {
        const rec = loadSplitBrain(resolve(flags.state))
        if (flags.json) { console.log(JSON.stringify({ splitBrain: rec }, null, 2)); return }
        if (!rec) { console.log(`no split brain recorded in ${flags.state}`); return }
        const lines = [
          `split brain found ${rec.detected} by this side (${rec.side} ${rec.node}) with ${rec.peerNode}`,
          `common point: sequence ${rec.point}, generation ${rec.common.id}; both sides wrote since`,
          `this side changed (sequences ${rec.local.from}..${rec.local.to}, ${rec.local.bytesWritten} bytes written):`,
          ...describeReport(rec.local),
          rec.remote ? `the peer changed (sequences ${rec.remote.from}..${rec.remote.to}, ${rec.remote.bytesWritten} bytes written):` : 'the peer did not send its changes',
          ...(rec.remote ? describeReport(rec.remote) : []),
          `way out: ${rec.wayOut}`
        ]
        console.log(lines.join('\n'))
      } catch (err) {
        process.stderr.write(`replfs: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })

  program.command('resolve')
    .description('end a split brain on the side whose writes since the common point are given up (saved, never lost)')
    .requiredOption('--state <dir>', 'state directory of the side that gives its writes up')
    .option('--discard-local', 'this side\'s writes since the common point are rolled back from the other side\'s data (required: says which side gives up)')
    .option('--json', 'machine-readable report')
    .addHelpText('after', `
Run on the side that gives its writes up; a daemon running on DIR is stopped
first. Its writes since the common point are saved in DIR/discarded-TIME/
(journal/: the journal segments that hold them, \`replfs journal inspect\`
reads them; files/: its copies of the files they touched, as they were), the
side becomes a secondary at the common point, and the report says how many
bytes were rolled back in which files. Then start it with \`replfs serve\`:
the primary compares blocks by checksum and sends only those that differ.`)
    .action(async (flags: { state: string, discardLocal?: boolean, json?: boolean }) => {
      try {
        if (!flags.discardLocal) throw replError('USAGE', 'resolve needs --discard-local, run on the side whose writes are given up', 'to keep this side\'s writes instead, run it on the other side')
        const out = await discardLocal(resolve(flags.state))
        console.log(flags.json ? JSON.stringify(out, null, 2) : out.text)
      } catch (err) {
        process.stderr.write(`replfs: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })
}

type Resolved = Omit<Discarded, 'changed'> & { text: string }

async function discardLocal (state: string): Promise<Resolved> {
  const rec = loadSplitBrain(state)
  if (!rec) {
    throw replError('USAGE', `no split brain recorded in ${state}`,
      'resolve works on a split brain the pair found: start this side as a secondary (`replfs demote`, `replfs serve`) and the other as primary; `replfs status` and the log say when it is found')
  }
  const spec = await groupOf(state)
  const role = await stateRole(state)
  if (role === 'primary') await demoteState(state, spec, log)
  else await stopDaemon(state, 'SIGTERM', log)
  const point = rec.point

  const journal = await Journal.open(state, { group: spec.group })
  let d: Discarded
  let hash: Buffer | null
  try {
    d = await saveDiscarded(state, spec, journal, point, false)
    hash = await journal.hashAt(point)
  } finally {
    await journal.close()
  }
  // The journal leaves the state directory whole: its segments hold every
  // discarded write exactly (readable with `replfs journal inspect`).
  for (const name of await fsp.readdir(state)) {
    if (name.endsWith(segmentSuffix)) await fsp.rename(join(state, name), join(d.journalDir, name))
  }
  const cp = (await readCheckpoint(state))!
  const history = clipHistory(historyOf(cp), point)
  await writeCheckpoint(state, { ...cp, acked: point, ackedHash: hash ?? undefined, appliedSeq: point, history, generation: history[history.length - 1].id })
  // Rolled back to the common point, and not consistent: the primary
  // compares every block (only differing ones are sent) and the copy is
  // consistent once that completes.
  writeAppliedCursor(state, point, false)
  // What the primary is to restate (the paths this side changed, with its
  // own since the point): only that moves. Without it (a journal that no
  // longer held every change, a list too long to send) every block is
  // compared instead.
  const rollback: Rollback | null = d.changed && { point, files: d.changed }
  const rollbackText = rollback && JSON.stringify(rollback)
  if (rollbackText && Buffer.byteLength(rollbackText) <= reportBytesMax) await fsp.writeFile(join(state, rollbackFile), rollbackText)
  else fs.rmSync(join(state, rollbackFile), { force: true })
  clearFailbackMarks(state)
  await writeStateRole(state, 'secondary')
  await archiveSplitBrain(state, join(d.savedIn, 'diverged.json'))

  const text = [
    `resolved: ${state} gives up its writes since sequence ${point} and is a secondary`,
    ...describeDiscarded(d),
    'start it as a secondary; the primary sends what either side changed since the common point (or, when this journal could not tell it all, the blocks that differ):',
    `  replfs serve --listen HOST:PORT --group ${spec.group} --state ${state} ${volumeFlags(spec)}`
  ].join('\n')
  return { point, savedIn: d.savedIn, journalDir: d.journalDir, filesDir: d.filesDir, rolledBack: d.rolledBack, text }
}
