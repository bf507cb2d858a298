// The network fuzzer's generators: hostile values drawn from a seeded rng. Pure: no I/O, no
// sockets (scripts/fuzz.mjs sends what these make). Each generator mixes the well-formed with
// the hostile, so input gets past the first check often enough to reach the later ones
// (decode, then message validation, then batch validation, then confinement, then apply).
//
// Safety of the fuzzer itself: device nodes are only ever drawn from `ctx.safeNodes` (the
// null and zero character devices, and the fuzzer's own loop device over a canary file as a
// block device), never at random, so a bug in replfs can at worst write the canary, never a real disk. Sizes that
// would be valid and huge (a sparse file of a TiB) are never generated: a size is small,
// or past what ext4 takes (16 TiB), or past what the format takes (2^53).
import { encodeFrame } from '../../dist/journal/frame.js'
import { frameBytesMax, preAuthFrameBytesMax, batchRecordsMax, recordDataBytesMax, xattrValueBytesMax, formatVersion } from '../../dist/core/limits.js'
import { protocolVersion } from '../../dist/replicate/messages.js'

/** Draw helpers over a [0,1) rng. */
export function draws (r) {
  const d = {
    r,
    int: n => Math.floor(r() * n),
    chance: p => r() < p,
    pick: a => a[Math.floor(r() * a.length)],
    bytes: n => { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256); return b }
  }
  return d
}

/** Values of every CBOR type, none of them a valid uint of a field's range. */
export function wrongValue (d) {
  return d.pick([
    () => 'x', () => '12', () => 1.5, () => -1, () => 2 ** 53, () => 2n ** 64n, () => null, () => [], () => ({}),
    () => d.bytes(d.int(40)), () => true, () => -(2 ** 60), () => NaN, () => Infinity, () => [1, 2, 3], () => ({ t: 'batch' })
  ])()
}

/** Any CBOR value, nested a little. */
export function randomValue (d, depth = 0) {
  const leaf = [() => d.int(1000), () => -d.int(1000), () => d.r() * 1e6, () => d.bytes(d.int(64)), () => 'fz' + d.int(100),
    () => d.chance(0.5), () => null, () => undefined, () => 2 ** 64, () => d.bytes(d.int(8)).toString('latin1')]
  if (depth >= 3 || d.chance(0.5)) return d.pick(leaf)()
  if (d.chance(0.5)) return Array.from({ length: d.int(5) }, () => randomValue(d, depth + 1))
  const o = {}
  const keys = ['t', 'b', 'seq', 'v', 'records', 'kind', 'path', 'vol', 'applied', 'mac', 'nonce', 'x']
  for (let i = d.int(5); i > 0; i--) o[d.pick(keys)] = randomValue(d, depth + 1)
  if (d.chance(0.5)) o.t = d.pick(['hello', 'auth', 'batch', 'ack', 'rebase', 'consistent', 'manifest', 'ping', 'state', 'nope'])
  return o
}

/** Replaces one field of `o` (a copy) by a wrong value, or deletes it. */
export function mutateField (d, o) {
  const keys = Object.keys(o).filter(k => k !== 't')
  if (keys.length === 0) return o
  const m = { ...o }
  const k = d.pick(keys)
  if (d.chance(0.15)) delete m[k]
  else m[k] = wrongValue(d)
  return m
}

const names = ['fz0', 'fz1', 'fz2', 'fzd', 'fzl', 'fzm']

/** Names the fuzzer's records use: after a run, none may exist outside the volumes. */
export const fuzzNames = names

/** A record path: mostly a plain path over a small pool of names (so records meet each
 *  other's effects: a symlink made by one is walked through by the next), else hostile. */
export function path (d, ctx, tame = false) {
  if (tame || d.chance(0.65)) {
    const n = d.pick([1, 1, 1, 2, 2, 3]) // short: records meet each other's names often
    return Array.from({ length: n }, () => d.pick(names)).join('/')
  }
  return d.pick([
    () => '../' + d.pick(names), () => '/' + d.pick(names), () => '/etc/' + d.pick(names), () => ctx.sentinel + '/secret',
    () => d.pick(names) + '/../../' + d.pick(names), () => d.pick(names) + '/./x', () => '', () => '.', () => '..',
    () => d.pick(names) + '//' + d.pick(names), () => d.pick(names) + '/', () => d.pick(names) + '\0../x',
    () => 'fzl/secret', () => 'fzl/sub/deep', () => 'fzl/' + d.pick(names), () => 'fzm/' + d.pick(names),
    () => 'a/'.repeat(2100) + 'b', () => 'n'.repeat(256), () => 'ü/' + d.pick(names), () => d.bytes(12).toString('latin1'),
    () => '../sentinel/secret', () => 'fz0/' + '../'.repeat(8) + 'etc'
  ])()
}

/** Symlink targets: inside, dangling, and out of the volume every way. */
function target (ctx) {
  return [ctx.sentinel, '../sentinel', '../../', '/etc', '/', ctx.base, '.', 'fz1', '..', ctx.canaryDir, '/tmp']
}

// Field values: those a valid record may hold, then (never in a tame record) those it may not.
const modes = [[0o644, 0o755, 0o4755, 0o7777, 0o100644, 0o010644, 0o140644, 0o020644, 0o060644, 0], [0o170777, 2 ** 32]]
const kinds = [['write', 'write', 'write', 'truncate', 'create', 'create', 'mkdir', 'mkdir', 'mknod', 'unlink', 'rmdir', 'rename', 'link',
  'symlink', 'symlink', 'chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'fsync', 'state'], ['bogus']]

/** A size or offset: small, or beyond what the filesystem or the format takes. */
function size (d, tame) {
  return tame || d.chance(0.8) ? d.int(9000) : d.pick([2 ** 44 + 4096, 2 ** 53 - 1, 2 ** 53, 2n ** 64n, -1, 1.5])
}

function data (d, tame) {
  if (tame || d.chance(0.97)) return d.bytes(d.int(4096))
  return d.chance(0.5) ? Buffer.alloc(recordDataBytesMax, 0x66) : Buffer.alloc(recordDataBytesMax + 1, 0x66)
}

/** One record, well-formed in shape more often than not; `tame`: always well-formed, on a
 *  plain path (which may still lead through a symlink the copy holds). */
export function record (d, ctx, tame = false) {
  const v = ([ok, bad]) => d.pick(tame ? ok : [...ok, ...bad])
  const vol = tame ? d.pick([0, 0, 0, 0, 1]) : d.chance(0.85) ? 0 : d.pick([1, 1, 2, 63, 64, -1, 1e9])
  const p = vol === 1 && (tame || d.chance(0.7)) ? '' : path(d, ctx, tame)
  const kind = tame && vol === 1 ? d.pick(['write', 'write', 'fsync', 'state']) : v(kinds)
  let r
  switch (kind) {
    case 'write': r = vol === 1 ? { off: v([[0, 4096, 65536], [ctx.imageSize - 10, ctx.imageSize, 2 ** 53 - 1]]), data: data(d, tame) } : { off: size(d, tame), data: data(d, tame) }; break
    case 'truncate': r = { size: size(d, tame) }; break
    case 'create': case 'mkdir': case 'chmod': r = { mode: v(modes) }; break
    case 'mknod': { const [mode, rdev] = v([ctx.safeNodes, [[0o170777, 0], [2 ** 32, 0]]]); r = { mode, rdev }; break }
    case 'rename': case 'link': r = { to: path(d, ctx, tame) }; break
    case 'symlink': r = { target: v([target(ctx), ['x'.repeat(5000)]]) }; break
    case 'chown': r = { uid: v([[0, 1000, 65534, 2 ** 32 - 1], [2 ** 32]]), gid: v([[0, 100, 2 ** 32 - 1], [-1]]) }; break
    case 'utimens': r = { atimeMs: v([[0, 1e12, -1, 1.5e15], [NaN]]), mtimeMs: d.pick([0, 1e12]), ...(d.chance(0.5) ? { atimeNs: v([[0, 999_999_999], [1e9]]), mtimeNs: 5 } : {}) }; break
    case 'setxattr': r = { name: v([['user.fz', 'trusted.fz', 'security.capability', 'system.posix_acl_access', 'user.', 'bad'], ['user.' + 'n'.repeat(300)]]), value: tame || d.chance(0.95) ? d.bytes(d.int(200)) : Buffer.alloc(xattrValueBytesMax + 1), flags: v([[0, 1, 2, 3], [4]]) }; break
    case 'removexattr': r = { name: d.pick(['user.fz', 'user.none', 'trusted.fz']) }; break
    case 'state': r = { type: vol === 1 && tame ? 'file' : v([['absent', 'file', 'dir', 'symlink'], ['fifo']]), mode: v(modes), uid: 0, gid: 0, size: vol === 1 && tame ? ctx.imageSize : d.int(5000), target: d.chance(0.5) ? '' : d.pick(target(ctx)), whole: d.chance(0.5) }; break
    default: r = {}
  }
  const rec = { kind, vol, path: p, ...r }
  return !tame && d.chance(0.08) ? mutateField(d, rec) : rec
}

/** A batch object (encoded by the caller) at `seq` after `prev`, sometimes broken. */
export function batchObject (d, ctx, seq, prev, tame) {
  // Tame: records that reach apply, where a symlink or a device node in the copy is met.
  if (tame) return { v: formatVersion, group: ctx.group, seq, prev, ts: Date.now(), sync: d.chance(0.2), records: Array.from({ length: 1 + d.int(6) }, () => record(d, ctx, true)) }
  const n = d.chance(0.02) ? batchRecordsMax + 1 : 1 + d.int(6)
  const records = Array.from({ length: n }, () => n > 100 ? { kind: 'fsync', vol: 0, path: 'fz0' } : record(d, ctx))
  const b = { v: formatVersion, group: ctx.group, seq, prev, ts: Date.now(), sync: d.chance(0.2), records }
  if (d.chance(0.06)) return mutateField(d, b)
  if (d.chance(0.03)) return { ...b, v: d.pick([0, formatVersion - 1, String(formatVersion)]) } // never this version
  if (d.chance(0.03)) return { ...b, group: d.pick(['h', '', 'g\0', 'g'.repeat(300)]) }
  if (d.chance(0.02)) return { ...b, records: [] }
  return b
}

/** A hello from a would-be primary, sometimes subtly or grossly wrong. */
export function helloObject (d, ctx, nonce) {
  const h = { t: 'hello', proto: protocolVersion, group: ctx.group, node: d.pick(['fuzzer', 'fuzzer', 'fuzzer', 'other-node']), role: 'primary', volumes: ctx.volumes, nonce, auth: true }
  if (d.chance(0.6)) return h
  return d.pick([
    () => mutateField(d, h), () => ({ ...h, proto: d.pick([0, protocolVersion - 1, 255, 2 ** 53]) }), () => ({ ...h, group: 'other' }),
    () => ({ ...h, role: 'secondary' }), () => ({ ...h, auth: false }), () => ({ ...h, nonce: nonce.subarray(0, d.int(32)) }),
    () => ({ ...h, volumes: Array.from({ length: 65 }, (_, i) => ({ name: 'v' + i, kind: 'dir', size: 0 })) }),
    () => ({ ...h, volumes: [{ name: 'n'.repeat(100), kind: 'dir', size: 0 }] }), () => ({ ...h, volumes: [{ ...ctx.volumes[0], kind: 'tape' }] }),
    () => ({ ...h, node: 'x'.repeat(300) })
  ])()
}

/** Bytes that are not one well-formed frame: `max` is the connection's current frame bound. */
export function badFrame (d, payload, max) {
  const frame = encodeFrame
  return d.pick([
    () => ({ kind: 'random-bytes', bytes: d.bytes(1 + d.int(2048)) }),
    () => { const f = frame(payload); f[4 + d.int(4)] ^= 1 << d.int(8); return { kind: 'bad-crc', bytes: f } },
    () => { const f = frame(payload); if (f.length > 8) f[8 + d.int(f.length - 8)] ^= 1 << d.int(8); else f[4] ^= 1; return { kind: 'bad-crc', bytes: f } },
    () => { const h = Buffer.alloc(8 + d.int(64)); h.writeUInt32BE(d.pick([max + 1, frameBytesMax + 1, preAuthFrameBytesMax + 1, 0xffffffff]), 0); return { kind: 'oversized', bytes: h } },
    () => { const f = frame(payload); return { kind: 'truncated', bytes: f.subarray(0, d.int(f.length)), close: true } },
    () => ({ kind: 'empty-frame', bytes: frame(Buffer.alloc(0)) }),
    () => ({ kind: 'not-cbor', bytes: frame(d.bytes(1 + d.int(64))) })
  ])()
}

/** Messages a secondary must not take from a primary, or takes only in shape. */
export function otherMessage (d, ctx) {
  return d.pick([
    () => ({ t: 'ack', applied: d.int(10) }), () => helloObject(d, ctx, d.bytes(32)), () => ({ t: 'auth', mac: d.bytes(32) }),
    () => ({ t: 'state', applied: 0, hash: d.bytes(16), generation: 'x', consistent: true }),
    () => ({ t: 'manifest', vol: d.pick([0, 1, 63, 64]), entries: [{ path: path(d, ctx), type: 'file', size: 1, sums: [d.bytes(16)] }] }),
    () => ({ t: 'manifest-end' }), () => ({ t: 'ping', ts: d.pick([0, Date.now(), -1]) }), () => ({ t: 'pong', ts: 1 }),
    () => ({ t: 'consistent', seq: d.pick([0, 1, 5, 2 ** 53 - 1, -1]) }), () => ({ t: 'error', code: 'FUZZ', message: 'fuzzer says goodbye' }),
    () => ({ t: 'rebase', seq: d.pick([0, 1, 2, 1000, 2 ** 53 - 1, 2 ** 53]), prev: d.chance(0.8) ? Buffer.alloc(16) : d.bytes(d.int(20)), generation: d.pick(['fz-gen', '', 'g'.repeat(65)]), full: d.chance(0.2) }),
    () => randomValue(d)
  ])()
}
