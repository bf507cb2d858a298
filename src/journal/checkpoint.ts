// The checkpoint: what the peer has acknowledged, and the data generation.
// Written whole to a temporary file, fsynced, renamed over the old one, so
// a crash leaves either the old or the new checkpoint, never a torn one.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { decodeValue, encodeValue } from './codec.js'
import { replError } from '../core/errors.js'
import { parseHistory, type GenStart } from './generations.js'

export interface Checkpoint {
  acked: number // last sequence the peer acknowledged (0: none)
  generation: string // data generation id: changes when history forks (promote)
  appliedSeq: number // secondary: last sequence applied to the volumes
  ackedHash?: Uint8Array // chain hash of the batch ending at `acked` (the chain survives trimming)
  resyncFull?: boolean // damage lost unacknowledged sequences: the next resync must be full
  history?: GenStart[] // the data generations this side went through (generations.ts)
}

const fileName = 'checkpoint.cbor'

export function newGeneration (): string {
  return randomBytes(8).toString('hex')
}

export async function readCheckpoint (dir: string): Promise<Checkpoint | null> {
  let buf: Buffer
  try {
    buf = await fsp.readFile(join(dir, fileName))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  let v: Partial<Checkpoint> | null = null
  let why = 'not a checkpoint'
  try {
    v = decodeValue(buf) as Partial<Checkpoint>
  } catch (err) {
    why = `undecodable: ${(err as Error).message}`
  }
  if (typeof v !== 'object' || v === null || typeof v.acked !== 'number' || typeof v.generation !== 'string') {
    throw replError('STATE_DAMAGED', `checkpoint ${join(dir, fileName)} is damaged (${buf.length} bytes, ${why})`,
      'restore it from a backup, or move it aside: the journal then starts a new generation and the pair resyncs in full')
  }
  return {
    acked: v.acked, generation: v.generation, appliedSeq: typeof v.appliedSeq === 'number' ? v.appliedSeq : 0,
    ackedHash: v.ackedHash instanceof Uint8Array ? v.ackedHash : undefined, resyncFull: v.resyncFull === true,
    history: parseHistory(v.history) ?? undefined
  }
}

export async function writeCheckpoint (dir: string, cp: Checkpoint): Promise<void> {
  await writeFileAtomic(join(dir, fileName), encodeValue(cp))
}

export async function writeFileAtomic (path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await fsp.open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await fsp.rename(tmp, path)
}
