// Data generations (DRBD's generation identifiers, by sequence): a side's
// history is the list of generations its data went through, each with the
// first sequence it holds. A new one starts when a side is promoted; a
// secondary adopts its primary's list as it follows it. Two sides that
// share a generation share the history up to where the first of them left
// it: the common point the pair compares at connect (replicate/pair-state.ts).
// Pure: no I/O.
import type { Seq } from '../core/records.js'

export interface GenStart {
  id: string // 16 hex digits (checkpoint.newGeneration)
  from: Seq // first sequence of this generation
}

/** Kept per side: older generations than this cannot be a common point
 *  with any peer still worth resuming (a full resync follows). */
export const historyMax = 32

/** The history a checkpoint records (one made before histories existed:
 *  its one generation from the start). */
export function historyOf (cp: { generation: string, history?: GenStart[] }): GenStart[] {
  return cp.history && cp.history.length > 0 ? cp.history : [{ id: cp.generation, from: 1 }]
}

/** What a side holding sequences up to `last` can claim: generations that
 *  start past `last + 1` were adopted from a primary but not reached. */
export function clipHistory (h: readonly GenStart[], last: Seq): GenStart[] {
  const kept = h.filter((g, i) => i === 0 || g.from <= last + 1)
  return kept.length > 0 ? kept : h.slice(0, 1)
}

/** A new generation `id` from sequence `from` (after clipping at from - 1). */
export function startGeneration (h: readonly GenStart[], id: string, from: Seq): GenStart[] {
  const next = [...clipHistory(h, from - 1), { id, from }]
  return next.slice(Math.max(0, next.length - historyMax))
}

/** Validates a history read from disk or the wire; null when it is not one. */
export function parseHistory (v: unknown): GenStart[] | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > historyMax) return null
  const out: GenStart[] = []
  for (const g of v) {
    if (typeof g !== 'object' || g === null) return null
    const { id, from } = g as { id?: unknown, from?: unknown }
    if (typeof id !== 'string' || !/^[0-9a-f]{1,64}$/.test(id)) return null
    if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) return null
    if (out.length > 0 && from < out[out.length - 1].from) return null
    out.push({ id, from })
  }
  return out
}

export const showHistory = (h: readonly GenStart[]) => h.map(g => `${g.id}@${g.from}`).join(' ')
