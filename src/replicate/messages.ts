// Every wire message of the replication protocol, with its validation
// (hypercore's lib/messages.js in spirit: one place, no sockets). A frame's
// payload is a CBOR map with a type tag `t`; decodeMessage checks the type
// is known and every field has its type and bound before any handler sees
// it (DRBD's drbd_cmd_handler[] table: validate, then dispatch).
import { decodeValue, encodeValue } from '../journal/codec.js'
import { replError } from '../core/errors.js'
import { chainHashBytes, frameBytesMax, pathBytesMax, volumesMax } from '../core/limits.js'
import { nameFromWire, nameToWire } from '../core/names.js'
import { parseHistory, type GenStart } from '../journal/generations.js'

export const protocolVersion = 3 // 2: chain hashes are XXH3-128 (limits.ts formatVersion); 3: `written` acks

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

/** Online verify (verify.ts): one thing to look at on the copy. `entry`:
 *  what is at `path` (type, mode, owner, size, link target, xattrs, link
 *  count); `list`: a directory's names; `len` > 0: a checksum per `block`
 *  bytes of [off, off+len) of a file. */
export interface VerifyItem { vol: number, path: string, entry: boolean, list: boolean, off: number, len: number, block: number }

export interface VerifyEntry {
  type: 'absent' | 'file' | 'dir' | 'symlink' | 'other'
  mode: number // st_mode: type bits and permissions
  uid: number
  gid: number
  size: number
  nlink: number
  /** Index of the first item of the same answer that names the same inode
   *  (its own index when none): hard-link structure, without inode numbers. */
  link: number
  target: string
  xattrs: Array<{ name: string, sum: Uint8Array }> // sorted by name; value checksums
}

/** `names` holds at most verifyNamesMax names; `more` says a directory has more. */
export interface VerifyAnswer { entry: VerifyEntry | null, names: string[] | null, more: boolean, sums: Uint8Array[] }

export const verifyItemsMax = 256
export const verifyNamesMax = 16_384 // 4 MiB of names at most (a request lists at most 2 directories)
export const verifyXattrsMax = 4096
export const verifyBlockBytesMin = 512
export const verifyBlockBytesMax = 16 * 1024 * 1024
export const verifyReadBytesMax = 64 * 1024 * 1024 // per request

export type Message =
  | { t: 'hello', proto: number, group: string, node: string, role: 'primary' | 'secondary', volumes: VolumeInfo[], nonce: Uint8Array, auth: boolean }
  | { t: 'auth', mac: Uint8Array }
  // secondary → primary after authentication: where its copy stands
  // (history: its data generations, replicate/pair-state.ts; absent from older peers)
  // (rollback: after `resolve --discard-local`, the paths it rolled back, divergence.ts Rollback as JSON)
  // (demoted: `replfs demote` made it a secondary at that sequence, and it has taken nothing since;
  // restated: its unclean-stop recoveries' records, without their data, restated.ts RestateDigest as JSON;
  // origin: the primary (node @ boot) whose history it took last, as `history` named it)
  | { t: 'state', applied: number, hash: Uint8Array, generation: string, consistent: boolean, history?: GenStart[], rollback?: string, demoted?: number, restated?: string, origin?: string }
  // primary → secondary: its sequences past `common` (whose chain hash is
  // `prev`) go (replicate/restated.ts). `held`: the restated sequences this
  // side holds as they are (JSON array); `drop`: they are all it has past
  // the point, so nothing is rolled back. Else it rolls its own writes back
  // (saved, as resolve --discard-local). Then it sends a new `state`.
  | { t: 'roll-back', common: number, prev: Uint8Array, held: string, drop: boolean }
  // primary → secondary, once the pair agreed where it stands: the
  // primary's generations, which the secondary adopts as it follows, and
  // which run of which primary it follows from here (node id @ boot id)
  | { t: 'history', gens: GenStart[], origin?: string }
  // split brain, both ways once: this side's changes since sequence
  // `common` (replicate/divergence.ts, JSON text checked by parseReport)
  | { t: 'diverged', common: number, report: string }
  // primary → secondary: history restarts at `seq` after `prev` (a resync
  // follows; with `full`, the secondary first sends its manifest)
  | { t: 'rebase', seq: number, prev: Uint8Array, generation: string, full: boolean }
  | { t: 'manifest', vol: number, entries: ManifestEntry[] }
  | { t: 'manifest-end' }
  | { t: 'batch', b: Uint8Array } // a journal batch payload, verbatim
  // secondary → primary: applied through `applied`; `written`: its journal's
  // file holds through there (sync-mode writes may return); `stored`: its
  // journal holds through there on disk (sync-mode fsyncs may return too)
  | { t: 'ack', applied: number, written?: number, stored?: number }
  // primary → secondary: the resync is complete once `seq` is applied
  | { t: 'consistent', seq: number }
  | { t: 'ping', ts: number }
  | { t: 'pong', ts: number }
  | { t: 'error', code: string, message: string }
  // primary → secondary: read `items` from the copy exactly when it has
  // applied sequence `at` (before it applies at + 1)
  | { t: 'verify', id: number, at: number, items: VerifyItem[] }
  // secondary → primary: the answers in item order; `missed` when the copy
  // was already past `at` (asked again at a later sequence), `consistent`
  // false when the copy is mid-resync (nothing to compare against)
  | { t: 'verified', id: number, at: number, missed: boolean, consistent: boolean, answers: VerifyAnswer[] }

export type MessageType = Message['t']

/** A manifest entry's path: text, or bytes for a name that is not UTF-8. */
function manifestPath (eo: { [k: string]: unknown }): string {
  return wireName(eo, 'path', pathBytesMax, 'manifest path')
}

/** A path or name as nameToWire sends it: text, or bytes for one that is
 *  not UTF-8 (no NUL, at most `max` bytes either way). */
function wireName (o: { [k: string]: unknown }, key: string, max: number, what: string): string {
  const v = o[key]
  if (!(v instanceof Uint8Array)) return str(o, key, max)
  if (v.length > max || v.includes(0)) bad(`${what} is too long or holds NUL`)
  return nameFromWire(v)
}

export function encodeMessage (m: Message): Buffer {
  // A path or name that is not UTF-8 goes as its bytes (core/names.ts).
  if (m.t === 'manifest') return encodeValue({ ...m, entries: m.entries.map(e => ({ ...e, path: nameToWire(e.path) })) })
  if (m.t === 'verify') return encodeValue({ ...m, items: m.items.map(it => ({ ...it, path: nameToWire(it.path) })) })
  if (m.t === 'verified') {
    return encodeValue({
      ...m,
      answers: m.answers.map(a => ({
        ...a, names: a.names && a.names.map(nameToWire), entry: a.entry && { ...a.entry, target: nameToWire(a.entry.target) }
      }))
    })
  }
  return encodeValue(m)
}

/** How every batch message the sender writes begins: {"t":"batch","b": */
export const batchMessageHead: Uint8Array = Buffer.from([0xa2, 0x61, 0x74, 0x65, 0x62, 0x61, 0x74, 0x63, 0x68, 0x61, 0x62])

/** The CBOR bytes that come before a batch payload in {t:'batch', b: payload}:
 *  a map of two, "t": "batch", "b": and a byte-string header. The sender
 *  writes prefix and payload side by side, so the payload (up to a MiB of
 *  write data) is never copied into a message; decodeMessage reads the
 *  result like any other message (a test checks they agree). */
export function batchMessagePrefix (payloadBytes: number): Buffer {
  const head = batchMessageHead
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

function history (o: Obj, k: string): GenStart[] {
  return parseHistory(o[k]) ?? bad(`field ${k} is not a generation history`)
}

export const reportBytesMax = 4 * 1024 * 1024
const originBytesMax = 200

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
    case 'state': {
      const m: Message = { t, applied: uint(o, 'applied'), hash: bytes(o, 'hash', chainHashBytes, chainHashBytes), generation: str(o, 'generation', 64), consistent: bool(o, 'consistent') }
      if (o.history !== undefined) m.history = history(o, 'history')
      if (o.rollback !== undefined) m.rollback = str(o, 'rollback', reportBytesMax)
      if (o.demoted !== undefined) m.demoted = uint(o, 'demoted')
      if (o.restated !== undefined) m.restated = str(o, 'restated', reportBytesMax)
      if (o.origin !== undefined) m.origin = str(o, 'origin', originBytesMax)
      return m
    }
    case 'history': return o.origin === undefined ? { t, gens: history(o, 'gens') } : { t, gens: history(o, 'gens'), origin: str(o, 'origin', originBytesMax) }
    case 'roll-back': return { t, common: uint(o, 'common'), prev: bytes(o, 'prev', chainHashBytes, chainHashBytes), held: str(o, 'held', reportBytesMax), drop: bool(o, 'drop') }
    case 'diverged': return { t, common: uint(o, 'common'), report: str(o, 'report', reportBytesMax) }
    // Sequences start at 1: a history restarting at 0 would put the copy at -1.
    case 'rebase': return { t, seq: uint(o, 'seq') || bad('field seq of a rebase is 0; sequences start at 1'), prev: bytes(o, 'prev', chainHashBytes, chainHashBytes), generation: str(o, 'generation', 64), full: bool(o, 'full') }
    case 'manifest': {
      const entries = list(o, 'entries', manifestEntriesMax).map(e => {
        const eo = obj(e, 'manifest entry')
        const sums = list(eo, 'sums', Math.ceil(2 ** 40 / syncBlockBytes)).map((s, i) => {
          if (!(s instanceof Uint8Array) || s.length !== 16) bad(`manifest sum ${i} is not 16 bytes`)
          return s
        })
        return { path: manifestPath(eo), type: oneOf(eo, 'type', ['file', 'dir', 'symlink', 'other'] as const), size: uint(eo, 'size'), sums }
      })
      const vol = uint(o, 'vol')
      if (vol >= volumesMax) bad('manifest volume number out of range')
      return { t, vol, entries }
    }
    case 'manifest-end': return { t }
    case 'batch': return { t, b: bytes(o, 'b', 1, frameBytesMax) }
    case 'ack': return {
      t, applied: uint(o, 'applied'),
      ...(o.written === undefined ? {} : { written: uint(o, 'written') }),
      ...(o.stored === undefined ? {} : { stored: uint(o, 'stored') }),
    }
    case 'consistent': return { t, seq: uint(o, 'seq') }
    case 'ping': case 'pong': return { t, ts: uint(o, 'ts') }
    case 'error': return { t, code: str(o, 'code', 64), message: str(o, 'message', 4096) }
    case 'verify': {
      let bytes = 0
      const items = list(o, 'items', verifyItemsMax).map(v => {
        const io = obj(v, 'verify item')
        const item = {
          vol: uint(io, 'vol'), path: wireName(io, 'path', pathBytesMax, 'verify item path'), entry: bool(io, 'entry'), list: bool(io, 'list'),
          off: uint(io, 'off'), len: uint(io, 'len'), block: uint(io, 'block')
        }
        if (item.vol >= volumesMax) bad('verify item volume number out of range')
        if (item.block < verifyBlockBytesMin || item.block > verifyBlockBytesMax) bad(`verify block size ${item.block} is outside ${verifyBlockBytesMin}..${verifyBlockBytesMax}`)
        bytes += item.len
        return item
      })
      if (bytes > verifyReadBytesMax) bad(`a verify request asks for ${bytes} bytes, over ${verifyReadBytesMax}`)
      return { t, id: uint(o, 'id'), at: uint(o, 'at'), items }
    }
    case 'verified': {
      const answers = list(o, 'answers', verifyItemsMax).map(v => {
        const ao = obj(v, 'verify answer')
        const names = ao.names === null ? null : list(ao, 'names', verifyNamesMax).map((n, i) => {
          if (n instanceof Uint8Array ? n.length > 255 || n.includes(0) || n.includes(0x2f) : typeof n !== 'string' || Buffer.byteLength(n) > 255) bad(`verify name ${i} is not a name`)
          return nameFromWire(n)
        })
        const sums = list(ao, 'sums', verifyReadBytesMax / verifyBlockBytesMin).map((s, i) => {
          if (!(s instanceof Uint8Array) || s.length !== 16) bad(`verify sum ${i} is not 16 bytes`)
          return s
        })
        return { entry: ao.entry === null ? null : verifyEntry(obj(ao.entry, 'verify entry')), names, more: bool(ao, 'more'), sums }
      })
      return { t, id: uint(o, 'id'), at: uint(o, 'at'), missed: bool(o, 'missed'), consistent: bool(o, 'consistent'), answers }
    }
    default: return bad(`unknown message type ${JSON.stringify(t)}`.slice(0, 200))
  }
}

function verifyEntry (eo: Obj): VerifyEntry {
  const xattrs = list(eo, 'xattrs', verifyXattrsMax).map(x => {
    const xo = obj(x, 'verify xattr')
    return { name: str(xo, 'name', 255), sum: bytes(xo, 'sum', 16, 16) }
  })
  return {
    type: oneOf(eo, 'type', ['absent', 'file', 'dir', 'symlink', 'other'] as const), mode: uint(eo, 'mode'), uid: uint(eo, 'uid'), gid: uint(eo, 'gid'),
    size: uint(eo, 'size'), nlink: uint(eo, 'nlink'), link: uint(eo, 'link'), target: wireName(eo, 'target', pathBytesMax, 'verify symlink target'), xattrs
  }
}
