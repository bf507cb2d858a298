// Replay: apply a journal's records, in order, to volumes. Used by
// `replfs journal replay` (rebuild a copy from a state directory, or stop at
// a sequence for a point-in-time copy) and by a secondary catching up on its
// own journal after a restart.
import type { Seq } from '../core/records.js'
import { replError } from '../core/errors.js'
import { describeDamage, type Journal } from '../journal/journal.js'
import { applyBatch, type ApplyRange, type Volumes } from './apply.js'

export interface ReplayResult {
  batches: number // batches with at least one record in range
  records: number
  first: Seq | null // first and last sequence applied
  last: Seq | null
}

function inRange (seq: Seq, count: number, r: ApplyRange): boolean {
  return (r.from === undefined || seq + count - 1 >= r.from) && (r.to === undefined || seq <= r.to)
}

/** Volume numbers named by records in `range`: checked before applying
 *  anything, so a replay with a volume missing fails before it starts
 *  rather than half way. Also checks that an explicit `from` is still in
 *  the journal (not trimmed), since skipping history would be silent. */
export async function journalVolumes (j: Journal, range: ApplyRange): Promise<Set<number>> {
  const vols = new Set<number>()
  let first = true
  for await (const { batch } of j.read(range.from ?? 1)) {
    if (range.to !== undefined && batch.seq > range.to) break
    if (first && range.from !== undefined && batch.seq > range.from) {
      throw replError('JOURNAL_GAP', `the journal starts at sequence ${batch.seq}; ${range.from}..${batch.seq - 1} are no longer in it`,
        'trimmed after the peer acknowledged them; replay from a later sequence')
    }
    first = false
    batch.records.forEach((r, i) => {
      if (inRange(batch.seq + i, 1, range)) vols.add(r.vol)
    })
  }
  return vols
}

/** Applies every record in `range`, batch by batch, stopping at the first
 *  failure (its error names the sequence). */
export async function replayJournal (j: Journal, vols: Volumes, range: ApplyRange = {}): Promise<ReplayResult> {
  const out: ReplayResult = { batches: 0, records: 0, first: null, last: null }
  let expect: Seq | null = range.from ?? null
  for await (const { batch } of j.read(range.from ?? 1)) {
    if (range.to !== undefined && batch.seq > range.to) break
    // The journal reads on past damage (it names it); a copy built across
    // a hole would be silently wrong: stop there.
    if (expect !== null && batch.seq > expect) {
      const d = j.damage.find(x => x.fromSeq <= expect! && x.toSeq >= expect!)
      throw replError('JOURNAL_DAMAGE', d ? describeDamage(d) : `the journal has no sequences ${expect}..${batch.seq - 1}`,
        'the copy is consistent up to the sequence before; the rest must come from the primary (a resync)')
    }
    expect = batch.seq + batch.records.length
    if (!inRange(batch.seq, batch.records.length, range)) continue
    const n = await applyBatch(vols, batch, range)
    const first = Math.max(batch.seq, range.from ?? batch.seq)
    out.batches++
    out.records += n
    out.first ??= first
    out.last = first + n - 1
  }
  return out
}
