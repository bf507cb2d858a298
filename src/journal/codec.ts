// CBOR codec for batches (cbor-x), with validation of everything decoded:
// a payload from disk or a peer is untrusted until every field has the
// type and bound the Record union promises. Pure: no I/O.
import { Encoder } from 'cbor-x'
import type { Batch, Record } from '../core/records.js'
import { unreachable } from '../core/records.js'
import { replError } from '../core/errors.js'
import { nativeCore } from '../native/addon.js'
import { hasEscapes, nameFromBytes, nameToBytes } from '../core/names.js'
import {
  batchRecordsMax, chainHashBytes, formatVersion, nameBytesMax, pathBytesMax,
  recordDataBytesMax, volumesMax, xattrValueBytesMax
} from '../core/limits.js'

// Plain CBOR: no record extension (structure tables would make a frame depend
// on earlier frames), byte strings untagged, maps decoded as plain objects.
// int64AsNumber: a uint64 (the native core writes times and sequences so) decodes to a
// number; one past 2^53 is then inexact, and validation refuses it.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, structuredClone: false, int64AsNumber: true } as never)

// cbor-x returns a view into a shared buffer it keeps filling (and grows to
// several times the largest value): a view we keep (a payload held for the
// sender, a frame queued on a socket) would pin all of it. Measured: a
// replicating primary's array buffers reached 1.1 GB through the benchmark.
// One copy to an exact-size buffer keeps memory at what is really held.
export function encodeBatch (b: Batch): Buffer {
  // A batch is encoded straight into a buffer of its own (sized from its
  // records; cbor-x grows it if a guess falls short), which saves copying
  // every write's data a second time.
  let bytes = 256
  for (const r of b.records) bytes += guessBytes(r)
  ;(cbor as unknown as { useBuffer (b: Buffer): void }).useBuffer(Buffer.allocUnsafe(bytes))
  return cbor.encode(b.records.some(escaped) ? { ...b, records: recordsToWire(b.records) } : b)
}

const nameFields = ['path', 'to', 'target'] as const

function escaped (r: Record): boolean {
  const o = r as unknown as { [k: string]: unknown }
  return nameFields.some(k => typeof o[k] === 'string' && hasEscapes(o[k] as string))
}

/** Records as they go on the wire: a name that is not valid UTF-8 (an
 *  escaped string, core/names.ts) as a CBOR byte string of its bytes. */
export function recordsToWire (records: Record[]): unknown[] {
  return records.map(r => {
    if (!escaped(r)) return r
    const o: { [k: string]: unknown } = { ...r }
    for (const k of nameFields) if (typeof o[k] === 'string' && hasEscapes(o[k] as string)) o[k] = nameToBytes(o[k] as string)
    return o
  })
}

/** Encoded size, roughly (any object: tests encode hostile records too). */
function guessBytes (r: Record): number {
  const o = r as unknown as { [k: string]: { length?: number } | undefined }
  let n = 96
  for (const k of ['data', 'value', 'path', 'to', 'target', 'name']) n += o[k]?.length ?? 0
  return n
}

/** Any CBOR value (messages use this; they validate their own shapes). */
export function encodeValue (v: unknown): Buffer {
  return Buffer.from(cbor.encode(v))
}

export function decodeValue (payload: Uint8Array): unknown {
  try {
    return cbor.decode(payload)
  } catch (err) {
    throw replError('FRAME_DECODE', `payload is not valid CBOR: ${(err as Error).message}`)
  }
}

export function decodeBatch (payload: Uint8Array): Batch {
  return validateBatch(decodeValue(payload))
}

/** Chain hash of a batch: XXH3-128 of its payload bytes. The payload
 *  carries `prev`, so each hash covers the whole history before it. It finds
 *  histories that differ (a copy is never taken for another's on an accident
 *  of bytes); it is no defence against a forger, whom the connection's
 *  authentication keeps out. The native core's function (journal_codec.c),
 *  so both languages hash alike: SHA-256 (format 1) cost 0.6 s of CPU per
 *  GiB here, on the FUSE thread at each append and again on each JS thread
 *  that follows the batch (native-notes/performance.md, section 8). */
export function chainHash (payload: Uint8Array): Buffer {
  return nativeCore().chainHash(payload)
}

export const zeroHash: Buffer = Buffer.alloc(chainHashBytes)

// ---- validation -----------------------------------------------------------

type Obj = { [k: string]: unknown }

function bad (msg: string): never {
  throw replError('BAD_RECORD', msg)
}

function obj (v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) bad(`${what} is not a map`)
  return v as Obj
}

function uint (o: Obj, k: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(`field ${k} is not an integer in 0..${max}`)
  return v
}

function int (o: Obj, k: string): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(`field ${k} is not a number`)
  return v
}

function bytes (o: Obj, k: string, max: number): Uint8Array {
  const v = o[k]
  if (!(v instanceof Uint8Array)) bad(`field ${k} is not a byte string`)
  if (v.length > max) bad(`field ${k} is ${v.length} bytes, over the limit of ${max}`)
  return v
}

function str (o: Obj, k: string, max: number): string {
  const v = o[k]
  if (typeof v !== 'string') bad(`field ${k} is not a string`)
  if (Buffer.byteLength(v) > max) bad(`field ${k} is longer than ${max} bytes`)
  if (v.includes('\0')) bad(`field ${k} contains NUL`)
  return v
}

/** A name or path: text, or a byte string when it is not valid UTF-8
 *  (then its escaped string, core/names.ts). */
function name (o: Obj, k: string, max: number): string {
  const v = o[k]
  if (!(v instanceof Uint8Array)) return str(o, k, max)
  if (v.length > max) bad(`field ${k} is longer than ${max} bytes`)
  if (v.includes(0)) bad(`field ${k} contains NUL`)
  return nameFromBytes(v)
}

function bool (o: Obj, k: string): boolean {
  const v = o[k]
  if (typeof v !== 'boolean') bad(`field ${k} is not a boolean`)
  return v
}

export function validateRecord (v: unknown): Record {
  const o = obj(v, 'record')
  const kind = o.kind
  if (typeof kind !== 'string') bad('record has no kind')
  const vol = uint(o, 'vol', volumesMax - 1)
  const path = name(o, 'path', pathBytesMax)
  const r = { kind, vol, path } as Record
  switch (r.kind) {
    case 'write': return { kind: r.kind, vol, path, off: uint(o, 'off'), data: bytes(o, 'data', recordDataBytesMax) }
    case 'truncate': return { kind: r.kind, vol, path, size: uint(o, 'size') }
    case 'create': case 'mkdir': case 'chmod': return { kind: r.kind, vol, path, mode: uint(o, 'mode', 0xffffffff) }
    case 'mknod': return { kind: r.kind, vol, path, mode: uint(o, 'mode', 0xffffffff), rdev: uint(o, 'rdev', 0xffffffff) }
    case 'unlink': case 'rmdir': case 'fsync': return { kind: r.kind, vol, path }
    case 'rename': case 'link': return { kind: r.kind, vol, path, to: name(o, 'to', pathBytesMax) }
    case 'symlink': return { kind: r.kind, vol, path, target: name(o, 'target', pathBytesMax) }
    case 'chown': return { kind: r.kind, vol, path, uid: uint(o, 'uid', 0xffffffff), gid: uint(o, 'gid', 0xffffffff) }
    case 'utimens': {
      const u: Record = { kind: r.kind, vol, path, atimeMs: int(o, 'atimeMs'), mtimeMs: int(o, 'mtimeMs') }
      if (o.atimeNs !== undefined || o.mtimeNs !== undefined) {
        u.atimeNs = uint(o, 'atimeNs', 999_999_999)
        u.mtimeNs = uint(o, 'mtimeNs', 999_999_999)
      }
      return u
    }
    case 'setxattr': return { kind: r.kind, vol, path, name: str(o, 'name', nameBytesMax), value: bytes(o, 'value', xattrValueBytesMax), flags: uint(o, 'flags', 3) }
    case 'removexattr': return { kind: r.kind, vol, path, name: str(o, 'name', nameBytesMax) }
    case 'state': {
      const type = o.type
      if (type !== 'absent' && type !== 'file' && type !== 'dir' && type !== 'symlink') bad('state record has a bad type')
      return {
        kind: r.kind, vol, path, type, mode: uint(o, 'mode', 0xffffffff), uid: uint(o, 'uid', 0xffffffff),
        gid: uint(o, 'gid', 0xffffffff), size: uint(o, 'size'), target: name(o, 'target', pathBytesMax), whole: bool(o, 'whole')
      }
    }
    default: {
      const k: never = r
      return bad(`unknown record kind ${JSON.stringify((k as Obj).kind)}`)
    }
  }
}

export function validateBatch (v: unknown): Batch {
  try {
    const o = obj(v, 'batch')
    const ver = o.v
    if (ver !== formatVersion) throw replError('VERSION_MISMATCH', `batch format version ${String(ver)}, this replfs reads ${formatVersion}`)
    const recs = o.records
    if (!Array.isArray(recs) || recs.length === 0 || recs.length > batchRecordsMax) bad(`batch must hold 1..${batchRecordsMax} records`)
    const prev = bytes(o, 'prev', chainHashBytes)
    if (prev.length !== chainHashBytes) bad('batch prev hash has the wrong length')
    // Every record's sequence must be exact as a number (a copy at 2^53 could not say where it is).
    if (uint(o, 'seq') > Number.MAX_SAFE_INTEGER - (recs.length - 1)) bad(`batch sequences run past ${Number.MAX_SAFE_INTEGER}`)
    return {
      v: ver,
      group: str(o, 'group', 255),
      seq: uint(o, 'seq'),
      prev,
      ts: uint(o, 'ts'),
      sync: bool(o, 'sync'),
      records: recs.map(validateRecord)
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'BAD_RECORD') throw replError('BAD_BATCH', (err as Error).message)
    throw err
  }
}

/** Keeps `unreachable` honest for record kinds added later (see records.ts). */
export function describeRecord (r: Record): string {
  switch (r.kind) {
    case 'write': return `write ${r.path} @${r.off} +${r.data.length}`
    case 'truncate': return `truncate ${r.path} ${r.size}`
    case 'create': case 'mkdir': case 'chmod': return `${r.kind} ${r.path} ${r.mode.toString(8)}`
    case 'mknod': return `mknod ${r.path} ${r.mode.toString(8)} ${r.rdev}`
    case 'unlink': case 'rmdir': case 'fsync': return `${r.kind} ${r.path}`
    case 'rename': case 'link': return `${r.kind} ${r.path} -> ${r.to}`
    case 'symlink': return `symlink ${r.path} -> ${r.target}`
    case 'chown': return `chown ${r.path} ${r.uid}:${r.gid}`
    case 'utimens': return `utimens ${r.path} ${r.atimeMs} ${r.mtimeMs}`
    case 'setxattr': return `setxattr ${r.path} ${r.name} +${r.value.length}`
    case 'removexattr': return `removexattr ${r.path} ${r.name}`
    case 'state': return `state ${r.path} ${r.type}${r.whole ? ' whole' : ''} size=${r.size}`
    default: return unreachable(r)
  }
}
