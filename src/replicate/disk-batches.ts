// The sender's batches from disk: what it no longer holds in memory (recent.ts)
// is read back from the journal's segments, batch after batch, by one reader
// kept across calls while the sender asks for the batch after the last one.
//
// A reader ends where the journal ended when it began. Batches followed
// since then were announced by a wake the sender's pump took in an earlier
// turn; if the end of this reader were the end of the journal, the pump
// would sleep with batches unsent, and nothing but the application's next
// write (or an ack, when some were still in flight) would wake it. So a
// reader that ends short of the journal's end is followed by a new one.
import type { Seq } from '../core/records.js'
import type { Journal, JournalEntry } from '../journal/journal.js'

/** A payload is lent until the next call: whoever keeps it longer holds it
 *  (`journal.buffers`, journal/read-buffers.ts). */
export class DiskBatches {
  private reader: AsyncGenerator<JournalEntry> | null = null
  /** The sequence the reader yields next (the batch after its last one). */
  private readerNext: Seq = 0
  /** The journal's end when the reader began: where it stops. */
  private readerEnd: Seq = 0
  private closed = false

  constructor (private readonly journal: Journal) {}

  /** The batch holding `want` and those after it in order, one per call; null
   *  at the journal's end, and once closed. A batch that does not start at
   *  `want` is the caller's to reject (a hole in the journal). */
  async next (want: Seq): Promise<JournalEntry | null> {
    while (!this.closed) {
      const reader = this.reader !== null && this.readerNext === want ? this.reader : this.start(want)
      const r = await reader.next()
      if (!r.done) {
        this.readerNext = r.value.batch.seq + r.value.batch.records.length
        return r.value
      }
      this.reader = null
      if (this.journal.nextSeq <= this.readerEnd) return null
    }
    return null
  }

  /** For good (the session ended): a read under way ends with its batch or null. */
  close (): void {
    this.closed = true
    this.stop()
  }

  private start (want: Seq): AsyncGenerator<JournalEntry> {
    this.stop()
    // Journal.read takes the journal's end at its first step: this one or later.
    this.readerEnd = this.journal.nextSeq
    this.readerNext = want
    this.reader = this.journal.read(want, this.journal.buffers)
    return this.reader
  }

  private stop (): void {
    void this.reader?.return(undefined)
    this.reader = null
  }
}
