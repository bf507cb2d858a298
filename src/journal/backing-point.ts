// The backing point: the last sequence the backing store is known durable
// through, with the boot id of the machine when it was written (see
// capture/backing-sync.ts for why, apply/redo.ts for its use).
import fs from 'node:fs'
import { join } from 'node:path'
import type { Seq } from '../core/records.js'
import { replError } from '../core/errors.js'
import { decodeValue, encodeValue } from './codec.js'
import { writeFileAtomic, writeFileAtomicSync } from './checkpoint.js'

export interface BackingPoint { seq: Seq, bootId: string }

const fileName = 'backing.cbor'

/** This boot of the machine (REPLFS_BOOT_ID stands in for a reboot in tests). */
export function bootId (): string {
  return process.env.REPLFS_BOOT_ID ?? fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
}

export function readBackingPoint (stateDir: string): BackingPoint | null {
  const path = join(stateDir, fileName)
  let v: unknown
  try {
    v = decodeValue(fs.readFileSync(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw replError('BAD_RECORD', `${path} is damaged: ${(err as Error).message}`, 'remove it: the next start then redoes nothing')
  }
  const p = v as Partial<BackingPoint>
  if (typeof p?.seq !== 'number' || typeof p.bootId !== 'string') throw replError('BAD_RECORD', `${path} is damaged`, 'remove it: the next start then redoes nothing')
  return { seq: p.seq, bootId: p.bootId }
}

export async function writeBackingPoint (stateDir: string, seq: Seq): Promise<void> {
  await writeFileAtomic(join(stateDir, fileName), encodeValue({ seq, bootId: bootId() }))
}

/** The same, synchronously: with the journal's reserve given back for it (a full state directory). */
export function writeBackingPointSync (stateDir: string, seq: Seq): void {
  writeFileAtomicSync(join(stateDir, fileName), encodeValue({ seq, bootId: bootId() }))
}
