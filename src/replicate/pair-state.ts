// Where two sides stand against each other at connect: their generation
// histories give the last generation they share; each side holds that
// generation up to where it left it (its next generation, or its end), and
// the common point is the lower of the two. Past it, a side that holds more
// has written (or was handed writes the other never had). Pure: no I/O.
//
//   neither past the common point   in sync (the chain hash must agree)
//   only the primary                the secondary is behind: resume the
//                                   journal or resync the changed ranges
//   only the secondary              it holds data this primary lacks: refused
//   both                            split brain: refused, never merged
import type { Seq } from '../core/records.js'
import { clipHistory, type GenStart } from '../journal/generations.js'

export interface SideHistory { history: readonly GenStart[], last: Seq }

/** The sides against their common point: sequences each holds past it. */
export interface Compared { common: GenStart, point: Seq, primaryPast: Seq, secondaryPast: Seq }

export type Standing =
  | { kind: 'unrelated' } // no generation in common: a new or foreign copy
  | ({ kind: 'in-sync' | 'behind' | 'ahead' | 'split' } & Compared)

/** The end of generation `i` on a side: the sequence before its next one, or its last. */
function endOf (s: SideHistory, h: GenStart[], i: number): Seq {
  return Math.min(s.last, h[i + 1] ? h[i + 1].from - 1 : s.last)
}

export function compareSides (primary: SideHistory, secondary: SideHistory): Standing {
  const ph = clipHistory(primary.history, primary.last)
  const sh = clipHistory(secondary.history, secondary.last)
  for (let i = ph.length - 1; i >= 0; i--) {
    const j = findLast(sh, ph[i].id)
    if (j < 0) continue
    const point = Math.min(endOf(primary, ph, i), endOf(secondary, sh, j))
    const primaryPast = primary.last - point
    const secondaryPast = secondary.last - point
    const kind: 'in-sync' | 'behind' | 'ahead' | 'split' = primaryPast > 0 && secondaryPast > 0 ? 'split' : primaryPast > 0 ? 'behind' : secondaryPast > 0 ? 'ahead' : 'in-sync'
    return { kind, common: ph[i], point, primaryPast, secondaryPast }
  }
  return { kind: 'unrelated' }
}

function findLast (h: GenStart[], id: string): number {
  for (let j = h.length - 1; j >= 0; j--) if (h[j].id === id) return j
  return -1
}

/** What the operator does about a split brain, said on the side whose
 *  state directory is `dir` (null: the other side's is not known here). */
export function splitBrainWayOut (point: Seq, dir: string | null, role: 'primary' | 'secondary'): string {
  const here = dir ?? 'DIR'
  const keepOther = role === 'secondary'
    ? `to keep this side's instead: \`replfs resolve --state DIR --discard-local\` on the other side, then \`replfs promote --state ${here}\` here and start \`replfs mount\` on its volumes`
    : `to keep this side's instead: \`replfs resolve --state DIR --discard-local\` on the other side and start it again (\`replfs serve\`)`
  return `both sides wrote since sequence ${point}; nothing was merged. See what each changed: \`replfs diverged --state ${here}\`. ` +
    `To give up this side's writes: \`replfs resolve --state ${here} --discard-local\` (it stops the daemon here and saves them; the report says where), ` +
    `then start this side as a secondary (\`replfs serve\`); ${keepOther}`
}
