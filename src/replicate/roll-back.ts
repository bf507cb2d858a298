// The primary's half of a fast failback (restated.ts): which restated
// records of the secondary it holds as they are, and the exchange in which
// the secondary rolls back past the common point and says again where it
// stands.
import type { Seq } from '../core/records.js'
import { replError } from '../core/errors.js'
import type { Journal } from '../journal/journal.js'
import type { CommitApi } from '../journal/group-commit.js'
import type { CaptureApi } from '../capture/capture.js'
import type { RestateSource } from '../capture/restate.js'
import type { VolumeSpec } from '../core/config.js'
import type { Connection } from './transport.js'
import type { Message } from './messages.js'
import { collectSince, type ChangedPath } from './divergence.js'
import { covered, entryKey, heldHere, readDemoted, readRestated, restateDigest, type RestateEntry } from './restated.js'
import { splitBrainWayOut } from './pair-state.js'

type StateMessage = Extract<Message, { t: 'state' }>

/** Restated entries compared per turn of the group lock: 64 pieces of
 *  64 KiB, 4 MiB read at most while applications wait. */
const heldRoundEntries = 64

/** Saving the discarded writes (their journal and file copies) can take a while. */
const rollBackMs = 300_000

export interface PrimarySide { journal: Journal, commit: CommitApi, capture: CaptureApi, source: RestateSource, volumes: readonly VolumeSpec[] }

/** Per entry: this side holds it as is, and has not changed it since
 *  `point` (its bytes, its path's state or that xattr; nor renamed or
 *  replaced a directory above it): there its data is what it was at the
 *  point. Read under the group lock, so the journal up to the sequence
 *  read there says what changed before. */
export async function heldOnPrimary (entries: RestateEntry[], point: Seq, p: PrimarySide): Promise<boolean[]> {
  // In rounds of a few MiB, so applications' writes wait little. An entry
  // read at one round and changed before the last is caught below: the
  // changes counted run up to the last round's sequence.
  let upTo = 0
  const same: boolean[] = []
  for (let i = 0; i < entries.length; i += heldRoundEntries) {
    const part = entries.slice(i, i + heldRoundEntries)
    same.push(...await p.capture.exclusive(() => {
      upTo = p.commit.lastAssigned
      return heldHere(part, p.source, vol => p.volumes[vol]?.kind === 'image')
    }))
  }
  await p.commit.idle()
  const changed = await collectSince(p.journal, point + 1, upTo, p.volumes.map(v => v.name))
  if (!changed.complete) return entries.map(() => false)
  const byPath = new Map(changed.changed.map(c => [`${c.vol}\0${c.path}`, c]))
  const image = (vol: number) => p.volumes[vol]?.kind === 'image'
  const changedSince = (e: RestateEntry): boolean => {
    if (e.path !== '' && byPath.get(`${e.vol}\0`)?.whole) return true
    for (let i = e.path.indexOf('/'); i >= 0; i = e.path.indexOf('/', i + 1)) if (byPath.get(`${e.vol}\0${e.path.slice(0, i)}`)?.whole) return true
    const c = byPath.get(`${e.vol}\0${e.path}`)
    if (!c) return false
    if (c.whole) return true
    switch (e.k) {
      case 'w': return c.ranges.some(([a, b]) => a < e.off + e.len && e.off < b)
      case 's': return !image(e.vol) // a write, truncate, chmod... may change it; an image's state is its fixed size
      case 'x': return c.xattrs?.includes(e.name) ?? false
    }
  }
  return entries.map((e, i) => same[i] && !changedSince(e))
}

/** Sends the roll-back and waits for the secondary's new `state`. */
export function askRollBack (conn: Connection, plan: { point: Seq, prev: Buffer, held: string[], drop: boolean },
  listen: (next: ((m: StateMessage) => void) | null) => void): Promise<StateMessage> {
  return new Promise((resolve, reject) => {
    const done = () => { clearTimeout(timer); listen(null); conn.removeListener('close', onClose) }
    const timer = setTimeout(() => { done(); reject(replError('TIMEOUT', `the secondary did not roll back to sequence ${plan.point} within ${rollBackMs / 1000} s`)) }, rollBackMs)
    const onClose = (err: Error | null) => { done(); reject(err ?? replError('PEER_ERROR', 'the secondary closed the connection during its roll-back')) }
    conn.on('close', onClose)
    listen(m => { done(); resolve(m) })
    conn.send({ t: 'roll-back', common: plan.point, prev: plan.prev, held: JSON.stringify(plan.held), drop: plan.drop })
  })
}

// ---- the secondary's half ------------------------------------------------

/** Saves this side's writes past `point` (their journal and its copies of
 *  the files they touched; `held`: restated parts the primary holds
 *  as they are, left out of the report) and says what it saved (set by the
 *  wiring: cli/discard.ts). */
export type Discard = (journal: Journal, point: Seq, held: ReadonlySet<string>) => Promise<{ changed: ChangedPath[] | null, lines: string[] }>

/** Checks a roll-back the primary asks for and, unless it only drops
 *  restated parts the primary holds, saves what it rolls back. Throws
 *  when this side may not roll back (then the pair stays refused). */
export async function prepareRollBack (journal: Journal, dir: string, applied: Seq, m: Extract<Message, { t: 'roll-back' }>, discard: Discard | null,
  log: (line: string) => void): Promise<{ changed: ChangedPath[] | null }> {
  const point = m.common
  if (point >= applied) throw replError('PEER_ERROR', `the primary asks for a roll-back to sequence ${point}, and this copy is at ${applied}`)
  const mine = await journal.hashAt(point)
  if (mine === null || !mine.equals(Buffer.from(m.prev))) {
    throw replError('SPLIT_BRAIN', `split brain: the histories differ at sequence ${point} (chain hashes${mine === null ? ': this journal no longer holds it' : ' differ'}); nothing is rolled back`, splitBrainWayOut(point, dir, 'secondary'))
  }
  const held = new Set<string>(parseKeys(m.held))
  if (m.drop) {
    // Only what this side's own digest says it restated, every part of it held.
    const ranges = readRestated(dir)
    const digest = await restateDigest(journal, ranges, point)
    const unheld = digest?.entries.find(e => !held.has(entryKey(e)))
    if (!digest || !covered(digest.ranges, point, applied) || unheld) {
      throw replError('PEER_ERROR', `the primary would drop sequences ${point + 1}..${applied}, and ${unheld ? `sequence ${unheld.seq} is a restated part it does not hold` : 'they are not all restated parts'}`)
    }
    log(`failback: sequences ${point + 1}..${applied} are this side's recovery of an unclean stop, and the primary holds every part they restate as it is: dropped, nothing rolled back`)
    return { changed: null }
  }
  const demoted = readDemoted(dir)
  if (!demoted || demoted.at !== applied) {
    throw replError('SPLIT_BRAIN', `split brain: this side holds sequences ${point + 1}..${applied} the primary never had, and it was not demoted after them; nothing is rolled back without the operator`, splitBrainWayOut(point, dir, 'secondary'))
  }
  if (!discard) throw replError('USAGE', 'this secondary cannot save rolled back writes (no volumes given)')
  const out = await discard(journal, point, held)
  for (const line of out.lines) log(line)
  return { changed: out.changed }
}

function parseKeys (text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown
    return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : []
  } catch {
    return []
  }
}
