// What the primary does with a secondary at connect, and why: resume the
// journal, resync (partial, full, or the paths a rolled back copy lists),
// or refuse (split brain). First where the sides stand by data generations
// (pair-state.ts), then what this journal still holds. Reads the journal
// (chain hashes, a rollback's own changes); decides nothing else.
import type { Seq } from '../core/records.js'
import type { Journal } from '../journal/journal.js'
import { zeroHash } from '../journal/codec.js'
import { clipHistory, historyOf, showHistory } from '../journal/generations.js'
import type { Message } from './messages.js'
import { compareSides, type Compared } from './pair-state.js'
import { collectSince, parseRollback, unionChanged, type ChangedPath, type Rollback } from './divergence.js'
import { splitBrainError } from './split-brain.js'
import { covered, entryKey, parseDigest, type RestateEntry } from './restated.js'

type StateMessage = Extract<Message, { t: 'state' }>

/** The primary's side of the comparison. */
export interface PlanSide {
  journal: Journal
  lastAssigned: Seq
  acked: Seq // what the secondary acknowledged, by this side's checkpoint
  tracking: boolean // changes are kept outside the journal (overflow): a dirty set
  /** Whether this side holds each restated record as it is, on paths it
   *  did not change since `point` (restated.ts). */
  held?: (entries: RestateEntry[], point: Seq) => Promise<boolean[]>
  origin?: string // this node on this boot: node id @ boot id (sender.ts)
}

/** What the pair does at connect, and why (logged, and shown in status). */
export type Plan =
  | { kind: 'resume' | 'partial', why: string }
  // lost: sequences the secondary holds that this journal lost without a
  // trace here (damage, for the sender to record)
  | { kind: 'full', why: string, lost?: { from: Seq, to: Seq } }
  | { kind: 'rollback', why: string, rollback: Rollback }
  | { kind: 'refuse', error: Error }
  | { kind: 'split', standing: Compared }
  // The secondary's sequences past the point go: its recovery's restate
  // that this side holds as is (drop), or, on a side `replfs demote` made a
  // secondary, its unshipped writes too (rolled back and saved there).
  | { kind: 'roll-back', why: string, point: Seq, prev: Buffer, held: string[], drop: boolean }

/** Where does the secondary stand against this journal? First by data
 *  generations (pair-state.ts), then by what this journal still holds. */
export async function planSession (me: PlanSide, st: StateMessage): Promise<Plan> {
  const mine = historyOf(me.journal.checkpoint)
  const theirs = st.history ?? [{ id: st.generation, from: 1 }]
  const standing = compareSides({ history: mine, last: me.lastAssigned }, { history: theirs, last: st.applied })
  if (standing.kind === 'unrelated') {
    return { kind: 'full', why: `no data generation in common (this side ${showHistory(mine)}, the secondary ${showHistory(theirs)}): a new or foreign copy` }
  }
  const at = `common point sequence ${standing.point} in generation ${standing.common.id}`
  // A resync was cut short. Before the dirty set: if the cut one was a
  // full resync (say the journal overflowed during an initial sync), the
  // dirty set holds only what it had journalled, not the blocks it never
  // reached; a partial resync would declare a half-built copy consistent.
  // A full one compares checksums, so what the copy has is not resent.
  // (A copy rolled back by `resolve --discard-local` is marked so too.)
  const rollback = !st.consistent && st.rollback !== undefined ? await planRollback(me, st, standing.kind) : null
  if (rollback) return { kind: 'rollback', why: `the secondary rolled back its own writes to the ${at} (resolve --discard-local): the paths either side changed since (${rollback.files.length} there) are sent from here`, rollback }
  if (!st.consistent) return { kind: 'full', why: `the copy is marked inconsistent (a resync cut short, or rolled back by resolve); ${at}: its blocks are compared by checksum, only differing ones are sent` }
  // The secondary holds sequences this primary never had: written there
  // as a primary, or lost here (a journal tail lost with the power). Both
  // wrote or not, its data is never overwritten without the operator.
  // Unless this journal lost its own end in the shared generation (damage,
  // named, on this boot: the backing store still holds every write): then
  // what the secondary holds past the point came from here, and comparing
  // every block makes it equal to this side's data. Damage is not a split
  // brain.
  const lost = lostHere(me, standing.common, theirs, st)
  if ((standing.kind === 'split' || standing.kind === 'ahead') && lost) {
    return { kind: 'full', why: `this journal lost sequences the secondary holds (damage, not a split brain${lost.found}); ${at}: its blocks are compared by checksum, only differing ones are sent`, ...lost.peer }
  }
  if (standing.kind === 'split' || standing.kind === 'ahead') return await planRollBack(me, st, standing) ?? { kind: 'split', standing }
  // Damage lost sequences the secondary may not have: which extents they
  // changed is unknown, so everything is compared (block checksums: what
  // the copy has is not sent again).
  if (me.journal.checkpoint.resyncFull) return { kind: 'full', why: `journal damage lost sequences the secondary may not have; ${at}` }
  if (me.tracking) {
    return st.applied >= me.acked
      ? { kind: 'partial', why: `the journal overflowed: the changed ranges tracked since sequence ${me.acked} are sent; ${at}` }
      : { kind: 'full', why: `the journal overflowed and the secondary is behind what the tracked ranges cover; ${at}` }
  }
  const hash = await me.journal.hashAt(st.applied)
  const state = standing.kind === 'in-sync' ? `in sync at ${at}` : `the secondary is behind by ${standing.primaryPast} sequences, ${at}`
  if (st.applied === 0 && me.acked === 0 && Buffer.from(st.hash).equals(zeroHash)) return { kind: 'resume', why: `${state}: streaming from the start` }
  if ((hash === null || !hash.equals(Buffer.from(st.hash))) && lost) {
    return { kind: 'full', why: `${state}, but this journal ${hash === null ? `no longer holds sequence ${st.applied}` : 'has another batch there'} and lost its end (damage, not a split brain${lost.found}): its blocks are compared by checksum`, ...lost.peer }
  }
  if (hash === null) return { kind: 'full', why: `${state}, but this journal no longer holds sequence ${st.applied} (trimmed): it cannot prove a common history` }
  // The secondary cannot tell its own hash (its journal is damaged or was
  // cut below what it applied): unknown, not a different history.
  if (Buffer.from(st.hash).equals(zeroHash)) return { kind: 'full', why: `${state}, but the secondary cannot tell its chain hash there` }
  if (!hash.equals(Buffer.from(st.hash))) {
    return { kind: 'refuse', error: splitBrainError(st.applied, `the secondary's history differs from this primary's at sequence ${st.applied} (chain hashes differ although the generations agree)`, me.journal.dir, 'primary') }
  }
  return { kind: 'resume', why: `${state}, chain hashes agree: ${standing.kind === 'in-sync' ? 'nothing to send' : `journal resumes at sequence ${st.applied + 1}`}` }
}

/** This journal lost its end in the generation the sides share, and the
 *  backing store holds every write it lost, so what the secondary holds
 *  past the point was written here: it cannot be a secondary's own writes
 *  (it never left the shared generation; its own writes would be in one of
 *  its own). Known two ways:
 *  - damage found at this open, on this boot, in this side's newest
 *    generation (so not an old primary's writes either);
 *  - the secondary says so: the last history it took came from this node,
 *    on this boot (its origin; a side that runs as a primary forgets its
 *    own), and it holds more than this side's checkpoint says it
 *    acknowledged. A segment gone with no trace here (deleted, with the
 *    checkpoint and the backing point behind what was shipped) is found
 *    only this way, and is recorded as damage from the last acknowledged
 *    sequence on (`peer`).
 *  Null otherwise: after a reboot the backing store may lack what the
 *  journal lost, and the secondary's data is never overwritten without the
 *  operator. */
function lostHere (me: PlanSide, common: { id: string }, theirs: ReadonlyArray<{ id: string }>, st: StateMessage): { found: string, peer: { lost?: { from: Seq, to: Seq } } } | null {
  if (theirs[theirs.length - 1]?.id !== common.id) return null
  if (me.journal.tailLostOnThisBoot && me.journal.tailLostIn === common.id) return { found: '', peer: {} }
  if (me.origin !== undefined && st.origin === me.origin && st.demoted === undefined && st.applied > me.acked) {
    return { found: `: the secondary took them from this node, on this boot, and this journal no longer has them`, peer: { lost: { from: me.acked + 1, to: st.applied } } }
  }
  return null
}

/** A copy rolled back by `resolve` to the common point: the paths it
 *  changed since and the ones this side changed since, when this journal
 *  still holds every one of its own (else null: a full resync). */
async function planRollback (me: PlanSide, st: StateMessage, standing: string): Promise<Rollback | null> {
const rb = parseRollback(st.rollback ?? '')
if (!rb || rb.point !== st.applied || (standing !== 'behind' && standing !== 'in-sync')) return null
if (me.journal.checkpoint.resyncFull || me.tracking) return null
// The same history up to the point, by chain hash, where both can tell it
// (else every block is compared: always safe on a copy marked inconsistent).
const hash = await me.journal.hashAt(st.applied)
if (hash === null || Buffer.from(st.hash).equals(zeroHash) || !hash.equals(Buffer.from(st.hash))) return null
return rb
}

/** The rolled back paths and this side's own changes from the common
 *  point up to the rebase (later ones are streamed); null when this
 *  journal no longer holds all of them. */
export async function rollbackPaths (journal: Journal, rb: Rollback, upTo: Seq, volNames: readonly string[]): Promise<ChangedPath[] | null> {
const mine = await collectSince(journal, rb.point + 1, upTo, volNames)
return mine.complete ? unionChanged(rb.files, mine.changed) : null
}

/** A secondary past the common point in the generation it shares with
 *  this side (no generation of its own: it never wrote knowing it was
 *  alone): what it holds past the point is its recovery's restate, or
 *  writes unshipped when it stopped being the primary. The restate this
 *  side holds as is goes without a trace; the rest only from a side that
 *  was demoted (restated.ts). Else null: a split brain. */
async function planRollBack (me: PlanSide, st: StateMessage, standing: Compared): Promise<Plan | null> {
  const theirs = clipHistory(st.history ?? [{ id: st.generation, from: 1 }], st.applied)
  if (theirs[theirs.length - 1].id !== standing.common.id || standing.secondaryPast === 0) return null
  const prev = await me.journal.hashAt(standing.point)
  if (prev === null) return null
  const digest = parseDigest(st.restated)
  const past = digest ? digest.entries.filter(e => e.seq > standing.point && e.seq <= st.applied) : []
  const ok = past.length > 0 && me.held ? await me.held(past, standing.point) : []
  const held = past.filter((_, i) => ok[i]).map(entryKey)
  const restateOnly = digest !== null && covered(digest.ranges, standing.point, st.applied)
  const at = `past the common point sequence ${standing.point} (generation ${standing.common.id})`
  if (restateOnly && past.length > 0 && held.length === past.length) {
    return { kind: 'roll-back', point: standing.point, prev, held, drop: true, why: `the secondary's ${standing.secondaryPast} sequences ${at} are its recovery of an unclean stop re-journalling parts this side holds as they are: dropped there, nothing is rolled back` }
  }
  if (st.demoted !== st.applied) return null
  return {
    kind: 'roll-back', point: standing.point, prev, held, drop: false,
    why: `the secondary was demoted at sequence ${st.applied} after this side was promoted: its ${standing.secondaryPast} sequences ${at} (unshipped writes; parts its recovery re-journalled) are rolled back there from this side's data, saved first${past.length > 0 ? ` (of ${past.length} re-journalled parts, ${held.length} hold what this side has: not counted)` : ''}`
  }
}
