// Power-loss recovery of a primary: the journal is the redo log (see
// capture/backing-sync.ts). After a reboot the records past the backing
// point are redone onto the backing store before the mount opens; the
// store then holds everything the journal does, durably, and the point
// moves to the journal's end so the redo is never repeated.
import { dirname } from 'node:path'
import type { VolumeSpec } from '../core/config.js'
import type { Journal } from '../journal/journal.js'
import { bootId, readBackingPoint, writeBackingPoint } from '../journal/backing-point.js'
import { closeVolumes, openVolumes } from '../volume/volume.js'
import { nativeCore } from '../native/addon.js'
import { replayJournal } from './replay.js'

/** Returns the number of records redone (0: not after a power loss). */
export async function redoAfterPowerLoss (stateDir: string, specs: readonly VolumeSpec[], journal: Journal, log: (l: string) => void): Promise<number> {
  const point = readBackingPoint(stateDir)
  if (!point || point.bootId === bootId() || journal.lastSeq <= point.seq) return 0
  // The journal keeps every record past the point (its trim floor, raised
  // before a rebase): a journal starting later lost what the disk lost.
  if (journal.firstSeq > point.seq + 1) log(`power loss recovery: sequences ${point.seq + 1}..${journal.firstSeq - 1} are neither on the backing store's disk nor in the journal (${stateDir}): changes made then may be missing on this side`)
  const vols = await openVolumes(specs)
  let n = 0
  try {
    n = (await replayJournal(journal, vols, { from: point.seq + 1 })).records
  } finally {
    await closeVolumes(vols)
  }
  await syncVolumes(specs)
  await writeBackingPoint(stateDir, journal.lastSeq)
  log(`power loss recovery: redid ${n} records (sequences ${point.seq + 1}..${journal.lastSeq}) onto the backing store from the journal`)
  return n
}

/** syncfs of each volume's filesystem (after the first, the others of the same filesystem are cheap). */
export async function syncVolumes (specs: readonly VolumeSpec[]): Promise<void> {
  for (const v of specs) await nativeCore().syncfs(v.kind === 'dir' ? v.path : dirname(v.path))
}
