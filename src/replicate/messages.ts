// Every wire message of the replication protocol, with its validation
// (hypercore's lib/messages.js in spirit: one place, no sockets). A frame's
// payload is a CBOR map with a type tag `t`; decodeMessage checks the type
// is known and every field has its type and bound before any handler sees
// it (DRBD's drbd_cmd_handler[] table: validate, then dispatch).
import { decodeValue, encodeValue } from '../journal/codec.js'
import { replError } from '../core/errors.js'
import { chainHashBytes, frameBytesMax, pathBytesMax, volumesMax } from '../core/limits.js'

export const protocolVersion = 1

export interface VolumeInfo { name: string, kind: 'dir' | 'image', size: number }

/** One path of a secondary's tree, for initial sync: its state and, for
 *  files, a checksum per block so identical blocks are not sent again. */
export interface ManifestEntry {
  path: string
  type: 'file' | 'dir' | 'symlink' | 'other'
  size: number
  sums: Uint8Array[] // files: one per syncBlockBytes block
}

export const syncBlockBytes = 1024 * 1024
export const manifestEntriesMax = 4096

export type Message =
  | { t: 'hello', proto: number, group: string, node: string, role: 'primary' | 'secondary', volumes: VolumeInfo[], nonce: Uint8Array, auth: boolean }
  | { t: 'auth', mac: Uint8Array }
  // secondary → primary after authentication: where its copy stands
  | { t: 'state', applied: number, hash: Uint8Array, generation: string, consistent: boolean }
  // primary → secondary: history restarts at `seq` after `prev` (a resync
  // follows; with `full`, the secondary first sends its manifest)
  | { t: 'rebase', seq: number, prev: Uint8Array, generation: string, full: boolean }
  | { t: 'manifest', vol: number, entries: ManifestEntry[] }
  | { t: 'manifest-end' }
  | { t: 'batch', b: Uint8Array } // a journal batch payload, verbatim
  | { t: 'ack', applied: number }
  // primary → secondary: the resync is complete once `seq` is applied
  | { t: 'consistent', seq: number }
  | { t: 'ping', ts: number }
  | { t: 'pong', ts: number }
  | { t: 'error', code: string, message: string }

export type MessageType = Message['t']

export function encodeMessage (m: Message): Buffer {
  return encodeValue(m)
}

/** The CBOR bytes that come before a batch payload in {t:'batch', b: payload}:
 *  a map of two, "t": "batch", "b": and a byte-string header. The sender
 *  writes prefix and payload side by side, so the payload (up to a MiB of
 *  write data) is never copied into a message; decodeMessage reads the
 *  result like any other message (a test checks they agree). */
export function batchMessagePrefix (payloadBytes: number): Buffer {
  const head = Buffer.from([0xa2, 0x61, 0x74, 0x65, 0x62, 0x61, 0x74, 0x63, 0x68, 0x61, 0x62]) // {"t":"batch","b":
  let len: Buffer
  if (payloadBytes < 24) len = Buffer.from([0x40 + payloadBytes])
  else if (payloadBytes < 0x100) len = Buffer.from([0x58, payloadBytes])
  else if (payloadBytes < 0x10000) { len = Buffer.alloc(3); len[0] = 0x59; len.writeUInt16BE(payloadBytes, 1) }
  else { len = Buffer.alloc(5); len[0] = 0x5a; len.writeUInt32BE(payloadBytes, 1) }
  return Buffer.concat([head, len])
}

type Obj = { [k: string]: unknown }

function bad (msg: string): never {
  throw replError('BAD_MESSAGE', msg)
}

function str (o: Obj, k: string, max = 255): string {
  const v = o[k]
  if (typeof v !== 'string' || Buffer.byteLength(v) > max || v.includes('\0')) bad(`field ${k} is not a string of at most ${max} bytes`)
  return v
}

function uint (o: Obj, k: string): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`field ${k} is not a non-negative integer`)
  return v
}

function bytes (o: Obj, k: string, min: number, max: number): Uint8Array {
  const v = o[k]
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) bad(`field ${k} is not a byte string of ${min}..${max} bytes`)
  return v
}

function bool (o: Obj, k: string): boolean {
  const v = o[k]
  if (typeof v !== 'boolean') bad(`field ${k} is not a boolean`)
  return v
}

function list (o: Obj, k: string, max: number): unknown[] {
  const v = o[k]
  if (!Array.isArray(v) || v.length > max) bad(`field ${k} is not a list of at most ${max}`)
  return v
}

function obj (v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) bad(`${what} is not a map`)
  return v as Obj
}

function oneOf<T extends string> (o: Obj, k: string, values: readonly T[]): T {
  const v = o[k]
  if (!values.includes(v as T)) bad(`field ${k} is not one of ${values.join(', ')}`)
  return v as T
}

/** Decodes and validates one payload; BAD_MESSAGE / FRAME_DECODE on anything else. */
export function decodeMessage (payload: Uint8Array): Message {
  const o = obj(decodeValue(payload), 'message')
  const t = o.t
  switch (t) {
    case 'hello': {
      const volumes = list(o, 'volumes', volumesMax).map(v => {
        const vo = obj(v, 'volume')
        return { name: str(vo, 'name', 64), kind: oneOf(vo, 'kind', ['dir', 'image'] as const), size: uint(vo, 'size') }
      })
      return {
        t, proto: uint(o, 'proto'), group: str(o, 'group'), node: str(o, 'node'), role: oneOf(o, 'role', ['primary', 'secondary'] as const),
        volumes, nonce: bytes(o, 'nonce', 32, 32), auth: bool(o, 'auth')
      }
    }
    case 'auth': return { t, mac: bytes(o, 'mac', 32, 32) }
    case 'state': return { t, applied: uint(o, 'applied'), hash: bytes(o, 'hash', chainHashBytes, chainHashBytes), generation: str(o, 'generation', 64), consistent: bool(o, 'consistent') }
    // Sequences start at 1: a history restarting at 0 would put the copy at -1.
    case 'rebase': return { t, seq: uint(o, 'seq') || bad('field seq of a rebase is 0; sequences start at 1'), prev: bytes(o, 'prev', chainHashBytes, chainHashBytes), generation: str(o, 'generation', 64), full: bool(o, 'full') }
    case 'manifest': {
      const entries = list(o, 'entries', manifestEntriesMax).map(e => {
        const eo = obj(e, 'manifest entry')
        const sums = list(eo, 'sums', Math.ceil(2 ** 40 / syncBlockBytes)).map((s, i) => {
          if (!(s instanceof Uint8Array) || s.length !== 16) bad(`manifest sum ${i} is not 16 bytes`)
          return s
        })
        return { path: str(eo, 'path', pathBytesMax), type: oneOf(eo, 'type', ['file', 'dir', 'symlink', 'other'] as const), size: uint(eo, 'size'), sums }
      })
      const vol = uint(o, 'vol')
      if (vol >= volumesMax) bad('manifest volume number out of range')
      return { t, vol, entries }
    }
    case 'manifest-end': return { t }
    case 'batch': return { t, b: bytes(o, 'b', 1, frameBytesMax) }
    case 'ack': return { t, applied: uint(o, 'applied') }
    case 'consistent': return { t, seq: uint(o, 'seq') }
    case 'ping': case 'pong': return { t, ts: uint(o, 'ts') }
    case 'error': return { t, code: str(o, 'code', 64), message: str(o, 'message', 4096) }
    default: return bad(`unknown message type ${JSON.stringify(t)}`.slice(0, 200))
  }
}
