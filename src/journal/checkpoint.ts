// The checkpoint: what the peer has acknowledged, and the data generation.
// Written whole to a temporary file, fsynced, renamed over the old one, so
// a crash leaves either the old or the new checkpoint, never a torn one.
// Two framed copies in the file: a damaged byte is found and outlived.
import fs, { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { decodeValue, encodeValue } from './codec.js'
import { replError } from '../core/errors.js'
import { checkFrameAt, encodeFrame } from './frame.js'
import { parseHistory, type GenStart } from './generations.js'

export interface Checkpoint {
  acked: number // last sequence the peer acknowledged (0: none)
  generation: string // data generation id: changes when history forks (promote)
  appliedSeq: number // secondary: last sequence applied to the volumes
  ackedHash?: Uint8Array // chain hash of the batch ending at `acked` (the chain survives trimming)
  resyncFull?: boolean // damage lost unacknowledged sequences: the next resync must be full
  history?: GenStart[] // the data generations this side went through (generations.ts)
  origin?: string // secondary: the primary run it follows, node id @ boot id (replicate/plan.ts)
  dropped?: number // primary: segments through this sequence may be dropped on purpose, unacknowledged records folded into the dirty set (retention.ts, overflow.ts)
}

const fileName = 'checkpoint.cbor'

export function newGeneration (): string {
  return randomBytes(8).toString('hex')
}

/** Reads the checkpoint (null: none yet). It is stored twice in its file,
 *  each copy framed with its CRC32C (u32 length | u32 crc32c | CBOR, as the
 *  journal): a copy that fails its check is damage, named through
 *  `onDamage`, and the other copy is used, so nothing is lost and no
 *  flipped byte becomes a wrong sequence silently. Both copies bad, or an
 *  unframed file (older versions wrote bare CBOR) that does not decode:
 *  STATE_DAMAGED, naming the file. */
export async function readCheckpoint (dir: string, onDamage: (what: string) => void = () => {}): Promise<Checkpoint | null> {
  const file = join(dir, fileName)
  let buf: Buffer
  try {
    buf = await fsp.readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  let v: Partial<Checkpoint> | null = null
  let why = 'not a checkpoint'
  if (buf.length > 0 && (buf[0] & 0xe0) === 0xa0) {
    // Unframed (a CBOR map: a frame starts with its length's high byte, 0).
    try {
      v = decodeValue(buf) as Partial<Checkpoint>
    } catch (err) {
      why = `undecodable: ${(err as Error).message}`
    }
  } else {
    const bad: string[] = []
    const first = checkFrameAt(buf, 0)
    // The second copy starts where the first ends; the first's length
    // damaged, at the middle (the copies are equal in size).
    const at = [0, first.ok ? first.end : Math.floor(buf.length / 2)]
    for (let i = 0; i < 2; i++) {
      const f = i === 0 ? first : checkFrameAt(buf, at[1])
      let got: Partial<Checkpoint> | null = null
      if (f.ok) {
        try { got = decodeValue(f.payload) as Partial<Checkpoint> } catch {}
      }
      if (got && isCheckpoint(got)) {
        v ??= got
      } else {
        bad.push(`copy ${i + 1} of 2 at byte ${at[i]} (${f.ok ? 'not a checkpoint' : f.reason === 'crc' ? 'CRC mismatch' : f.reason})`)
      }
    }
    if (bad.length === 2) why = `both copies damaged: ${bad.join(', ')}`
    else if (bad.length === 1) onDamage(`checkpoint damaged: ${file}: ${bad[0]}; read from the other copy, nothing lost (rewritten)`)
  }
  if (!isCheckpoint(v)) {
    throw replError('STATE_DAMAGED', `checkpoint ${file} is damaged (${buf.length} bytes, ${why})`,
      'restore it from a backup, or move it aside: the journal then starts a new generation and the pair resyncs in full')
  }
  return {
    acked: v.acked, generation: v.generation, appliedSeq: typeof v.appliedSeq === 'number' ? v.appliedSeq : 0,
    ackedHash: v.ackedHash instanceof Uint8Array ? v.ackedHash : undefined, resyncFull: v.resyncFull === true,
    history: parseHistory(v.history) ?? undefined, origin: typeof v.origin === 'string' ? v.origin : undefined,
    dropped: typeof v.dropped === 'number' ? v.dropped : undefined
  }
}

function isCheckpoint (v: unknown): v is Partial<Checkpoint> & { acked: number, generation: string } {
  const c = v as Partial<Checkpoint> | null
  return typeof c === 'object' && c !== null && typeof c.acked === 'number' && typeof c.generation === 'string'
}

/** Writes the checkpoint, twice in one file (see readCheckpoint), atomically. */
export async function writeCheckpoint (dir: string, cp: Checkpoint): Promise<void> {
  const frame = encodeFrame(encodeValue(cp))
  await writeFileAtomic(join(dir, fileName), Buffer.concat([frame, frame]))
}

/** The same, synchronously: under the native core's group lock (journal.ts, a full directory). */
export function writeCheckpointSync (dir: string, cp: Checkpoint): void {
  const frame = encodeFrame(encodeValue(cp))
  writeFileAtomicSync(join(dir, fileName), Buffer.concat([frame, frame]))
}

export function writeFileAtomicSync (path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp`
  const fd = fs.openSync(tmp, 'w', 0o600)
  try {
    fs.writeFileSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, path)
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
