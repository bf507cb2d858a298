// Parts owed to the journal: after an unclean stop, recovery re-journals
// what the activity log marks hot (restate.ts). When it cannot (the state
// directory is full or failing, or the journal is at its size limit), the
// primary must still come up: the marks are kept on disk, as they are, by
// renaming the activity log to `activity.owed-N` (a rename needs no free
// space), and re-journalled later, once appends go through
// (native-capture.ts; cli/primary.ts does it part by part, keeping what went
// in, so owed parts larger than the room get in as acknowledgements make
// room; journal/reserve.ts lets a full directory record those). Until then
// the pair is not in sync (status shows a journal error), and a further
// crash finds them again here.
import fs, { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Record } from '../core/records.js'
import { recordBytes } from '../core/records.js'
import { batchBytesTarget, batchRecordsMax } from '../core/limits.js'
import { replError } from '../core/errors.js'
import type { Journal } from '../journal/journal.js'
import { activityFileName, markKey, readMarks, type HotMark } from './activity-log.js'
import { restateSteps, type RestateSource } from './restate.js'
import type { Capture } from './capture.js'
import type { DirtySet } from './dirty-set.js'

const owedPrefix = 'activity.owed-'

export interface Owed {
  parts: number
  message: string
}

/** The owed files of a state directory and the marks they hold. */
export async function readOwedMarks (state: string): Promise<{ files: string[], marks: HotMark[] }> {
  const files = (await fsp.readdir(state)).filter(n => n.startsWith(owedPrefix)).sort().map(n => join(state, n))
  const marks: HotMark[] = []
  for (const f of files) marks.push(...await readMarks(f))
  return { files, marks }
}

/** Marks of several lists, each once. */
export function mergeMarks (...lists: HotMark[][]): HotMark[] {
  const out = new Map<string, HotMark>()
  for (const l of lists) for (const m of l) out.set(markKey(m), m)
  return [...out.values()]
}

/** Renames the activity log (if it holds marks) to the next owed file; its path, or null. */
export async function keepOwed (state: string): Promise<string | null> {
  const log = join(state, activityFileName)
  let size = 0
  try { size = fs.statSync(log).size } catch {}
  if (size === 0) return null
  const taken = new Set(await fsp.readdir(state))
  let n = 1
  while (taken.has(`${owedPrefix}${n}`)) n++
  const to = join(state, `${owedPrefix}${n}`)
  await fsp.rename(log, to)
  return to
}

/** Forgets owed files once what they hold is re-journalled (or in the dirty set, saved). */
export async function dropOwed (state: string, files: string[]): Promise<void> {
  for (const f of files) await fsp.unlink(f).catch(() => {})
  if (files.length > 0) {
    const dfd = fs.openSync(state, 'r')
    try { fs.fsyncSync(dfd) } catch {} finally { fs.closeSync(dfd) }
  }
}

/** The journal may not pass `maxBytes` (0: no limit) to take a restate:
 *  a restart needs no room beyond the limit. */
export function checkRoom (journal: Journal, maxBytes: number, adding = 0): void {
  if (maxBytes > 0 && journal.bytes + adding > maxBytes) {
    throw replError('JOURNAL_FULL', `the journal is at its limit (${journal.bytes} of ${maxBytes} bytes, --journal-max)`)
  }
}

/** Recovery with JS as the journal's writer: restates `marks` straight into
 *  the journal, batch by batch, each append tried once (the JS group
 *  commit retries forever: a full disk kept the mount down). Throws at the
 *  first append that fails: the caller keeps every mark owed (a restate
 *  repeated is harmless). Returns the records appended. */
export function restateIntoJournal (marks: HotMark[], src: RestateSource, journal: Journal, capture: Capture, maxBytes: number): number {
  let pending: Record[] = []
  let bytes = 0
  let n = 0
  const flush = () => {
    if (pending.length === 0) return
    checkRoom(journal, maxBytes, bytes)
    const a = journal.appendRecords(pending, false)
    pending.forEach((r, i) => capture.extents.note(r, a.seq + i))
    n += pending.length
    pending = []
    bytes = 0
  }
  for (const step of restateSteps(marks, src, r => {
    pending.push(r)
    bytes += recordBytes(r)
    if (bytes >= batchBytesTarget || pending.length >= batchRecordsMax) flush()
  })) step()
  flush()
  return n
}

/** Recovery in track mode: the restates go to the dirty set, saved. */
export async function restateIntoDirty (marks: HotMark[], src: RestateSource, capture: Capture): Promise<number> {
  let n = 0
  for (const step of restateSteps(marks, src, r => { n++; capture.record(r, [], () => {}) })) step()
  await capture.saveDirty()
  return n
}

/** Track mode at run time: hot and owed marks join the dirty set as they
 *  are (a resync restates them), saved. */
export async function owedIntoDirty (marks: HotMark[], dirty: DirtySet): Promise<void> {
  for (const m of marks) dirty.mark(m)
  await dirty.save()
}
