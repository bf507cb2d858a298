// The state directory's reserve: a small file of zeros (core/limits.ts,
// stateReserveBytes) that a primary keeps beside its journal. Without it a
// journal that took every byte of its filesystem (the secondary behind, no
// --journal-max, or one larger than the filesystem) could never shrink
// again: trimming acknowledged segments waits for the checkpoint that
// records the acknowledgement, and writing the checkpoint (a new temporary
// file, renamed over the old) needs a free page. Given back only under the
// native core's group lock (journal.ts), so no append takes the bytes
// first; made again once trimming gave room back.
import fs from 'node:fs'
import { join } from 'node:path'

export const reserveFileName = 'reserve'

export class Reserve {
  private readonly path: string
  /** The file is there, whole. */
  held = false

  constructor (private readonly dir: string, private readonly bytes: number) {
    this.path = join(dir, reserveFileName)
  }

  /** Makes the file if it is not there; false when there is no room for it
   *  (twice its size free: a try that fails takes every free byte for a
   *  moment, and an application's write could fail for it). Never throws. */
  keep (): boolean {
    if (this.held) return true
    try {
      if (fs.statSync(this.path).size === this.bytes) return (this.held = true)
    } catch {}
    try {
      const st = fs.statfsSync(this.dir)
      if (st.bavail * st.bsize < 2 * this.bytes) return false
      const fd = fs.openSync(this.path, 'w', 0o600)
      try {
        fs.writeSync(fd, Buffer.alloc(this.bytes)) // zeros written, not a sparse file: the blocks are taken
        fs.fsyncSync(fd)
        this.held = true
      } finally {
        fs.closeSync(fd)
      }
    } catch {
      this.held = false
    }
    if (!this.held) fs.rmSync(this.path, { force: true })
    return this.held
  }

  /** Gives the bytes back; false when there were none to give. */
  release (): boolean {
    if (!this.held) return false
    this.held = false
    fs.rmSync(this.path, { force: true })
    return true
  }
}
