// A split brain, once found, is written down on both sides (STATE/diverged.json):
// the common point, what each side changed since, and the way out. It
// outlives the connection and restarts: a secondary that holds one refuses
// every primary, a primary finds it again at each connect, until the
// operator resolves it (`resolve --discard-local` on the side that gives up
// its writes, `promote` of a surviving secondary), which archives it.
import fs, { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Seq } from '../core/records.js'
import { replError, type ReplError } from '../core/errors.js'
import type { GenStart } from '../journal/generations.js'
import { writeFileAtomic } from '../journal/checkpoint.js'
import type { ChangeReport } from './divergence.js'
import { splitBrainWayOut } from './pair-state.js'

export interface SplitBrainRecord {
  detected: string // ISO time
  side: 'primary' | 'secondary' // the role of this side when it was found
  node: string
  peerNode: string
  point: Seq // the common point: both sides hold the same history up to here
  common: GenStart // the last generation the sides share
  local: ChangeReport // this side's changes since the point
  remote: ChangeReport | null // the peer's (null: it did not send them)
  wayOut: string
}

export const divergedFile = 'diverged.json'

export async function saveSplitBrain (dir: string, rec: SplitBrainRecord): Promise<void> {
  await writeFileAtomic(join(dir, divergedFile), Buffer.from(JSON.stringify(rec, null, 2) + '\n'))
}

export function loadSplitBrain (dir: string): SplitBrainRecord | null {
  let text: string
  try { text = fs.readFileSync(join(dir, divergedFile), 'utf8') } catch { return null }
  try {
    const v = JSON.parse(text) as SplitBrainRecord
    if (typeof v.point === 'number' && typeof v.local === 'object') return v
  } catch {}
  throw replError('STATE_DAMAGED', `${join(dir, divergedFile)} is not a split-brain record`, 'move it aside; the next connection records the split brain again')
}

/** The record leaves the state directory for `to` (a resolve keeps it with
 *  the discarded writes) or, by default, for diverged-resolved-TIME.json. */
export async function archiveSplitBrain (dir: string, to?: string): Promise<string | null> {
  const from = join(dir, divergedFile)
  if (!fs.existsSync(from)) return null
  const dest = to ?? join(dir, `diverged-resolved-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  await fsp.rename(from, dest)
  return dest
}

export function splitBrainError (point: Seq, detail: string, dir: string | null, role: 'primary' | 'secondary'): ReplError {
  return replError('SPLIT_BRAIN', `split brain: ${detail}`, splitBrainWayOut(point, dir, role))
}

/** One line for status and logs. */
export function splitBrainSummary (rec: SplitBrainRecord): { point: Seq, generation: string, detected: string, localFiles: number, remoteFiles: number | null, wayOut: string } {
  return {
    point: rec.point, generation: rec.common.id, detected: rec.detected,
    localFiles: rec.local.files.length + rec.local.filesOmitted,
    remoteFiles: rec.remote ? rec.remote.files.length + rec.remote.filesOmitted : null,
    wayOut: rec.wayOut
  }
}
