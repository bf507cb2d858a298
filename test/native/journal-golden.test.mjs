// timeout: 120
// Golden tests of the journal format between the native core (C:
// src/native/journal*.c, driven by the journalmain harness) and the TS side
// (src/journal/): what C writes, the TS Journal reads back field by field,
// with the same CRCs and chain hashes; what TS writes, C's open-time scan
// accepts with the TS-computed end, and refuses with a message naming the
// file when the end is wrong or a byte is flipped. Also the core's sync
// waits and fallback, and the track queue with its activity marks.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { crc32c } from '@node-rs/crc32'
import { tempDir, ROOT } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { chainHash, decodeValue, validateRecord, zeroHash } from '../../dist/journal/codec.js'
import { listSegments, scanBuffer } from '../../dist/journal/segments.js'
import { ActivityLog } from '../../dist/capture/activity-log.js'
import { formatVersion } from '../../dist/core/limits.js'

const NATIVE = join(ROOT, 'src', 'native')
const HARNESS = join(NATIVE, 'build', 'journal', 'journalmain')

// Built (or brought up to date: make is incremental) once per run.
let built = false
function harness () {
  if (!built) {
    const r = spawnSync('make', ['-C', NATIVE, '-f', 'journal.mk', 'journal-harness'], { encoding: 'utf8' })
    if (r.status !== 0 || !fs.existsSync(HARNESS)) {
      throw new Error(`cannot build the journal harness (make -C src/native -f journal.mk journal-harness): ${r.error?.message ?? ''}\n${r.stdout ?? ''}${r.stderr ?? ''}`)
    }
    built = true
  }
  return HARNESS
}

function run (...args) {
  const r = spawnSync(harness(), args.map(String), { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

const hex = (b) => Buffer.from(b).toString('hex')
const bytes = (b) => ({ hex: hex(b) })
// Records with byte fields as hex, so that Buffer and Uint8Array compare equal.
const plain = (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Uint8Array ? bytes(v) : v]))

/** What journalmain.c's writer() appends for thread t, in its order. */
function expected (t) {
  const P = t ? 'b' : 'a'
  const vol = t
  const big = Buffer.alloc(1 << 20)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3 + t) & 255
  const mid = Buffer.alloc(4096)
  for (let i = 0; i < 4096; i++) mid[i] = (i ^ (t * 0x55)) & 255
  const small = Buffer.alloc(100)
  for (let i = 0; i < 100; i++) small[i] = (255 - i - t) & 255
  const f = `${P}/f`
  return [
    { kind: 'mkdir', vol, path: P, mode: 0o755 },
    { kind: 'create', vol, path: f, mode: 0o644 },
    { kind: 'write', vol, path: f, off: 0, data: Buffer.from('hello') },
    { kind: 'write', vol, path: `${P}/big`, off: 4096, data: big },
    { kind: 'write', vol, path: f, off: 5, data: Buffer.alloc(0) },
    { kind: 'write', vol, path: `${P}/mid`, off: 2 ** 40, data: mid },
    { kind: 'write', vol, path: `${P}/mid`, off: 7, data: small },
    { kind: 'truncate', vol, path: f, size: 3 },
    { kind: 'mknod', vol, path: `${P}/fifo`, mode: 0o10644, rdev: 0 },
    { kind: 'mknod', vol, path: `${P}/dev`, mode: 0o20600, rdev: 0x103 },
    { kind: 'symlink', vol, path: `${P}/ln`, target: '../ünï/target' },
    { kind: 'link', vol, path: f, to: `${P}/f2` },
    { kind: 'rename', vol, path: `${P}/f2`, to: `${P}/日本語.txt` },
    { kind: 'chmod', vol, path: f, mode: 0o4755 },
    { kind: 'chown', vol, path: f, uid: 1000, gid: 4294967294 },
    { kind: 'utimens', vol, path: f, atimeMs: 1700000000123.456789, mtimeMs: 1700000000000, atimeNs: 123456789, mtimeNs: 0 },
    { kind: 'utimens', vol, path: f, atimeMs: -500, mtimeMs: -1999.999999, atimeNs: 500000000, mtimeNs: 1 },
    { kind: 'setxattr', vol, path: f, name: 'user.bin', value: Buffer.from([0, 1, 2, 255, 0, 128]), flags: 1 },
    { kind: 'removexattr', vol, path: f, name: 'user.bin' },
    { kind: 'unlink', vol, path: `${P}/日本語.txt` },
    { kind: 'mkdir', vol, path: `${P}/d`, mode: 0o700 },
    { kind: 'rmdir', vol, path: `${P}/d` },
    { kind: 'create', vol, path: `${P}/ünïcødé`, mode: 0o600 },
    { kind: 'fsync', vol, path: f }
  ].map(plain)
}

function parseWrite (out) {
  const batches = new Map()
  let end = null
  for (const line of out.split('\n')) {
    const b = /^batch (\d+) (\d+) ([0-9a-f]{32})$/.exec(line)
    if (b) batches.set(Number(b[1]), { count: Number(b[2]), hash: b[3] })
    const e = /^end (\d+) ([0-9a-f]{32}) /.exec(line)
    if (e) end = { nextSeq: Number(e[1]), hash: e[2] }
  }
  return { batches, end }
}

async function readAll (dir, group) {
  const j = await Journal.open(dir, { group, readOnly: true })
  const out = []
  for await (const e of j.read(1)) out.push(e)
  return { j, entries: out }
}

/** Every frame of every segment: CRC as @node-rs/crc32 computes it, and the
 *  segment named by its first batch. */
async function checkFrames (dir) {
  const segs = await listSegments(dir)
  for (const s of segs) {
    const buf = fs.readFileSync(s.path)
    assert.is(fs.statSync(s.path).mode & 0o777, 0o600, `${s.path} is private`)
    const scan = scanBuffer(buf, s.path)
    assert.is(scan.damage, null, `${s.path} scans clean`)
    for (const b of scan.batches) {
      assert.is(buf.readUInt32BE(b.offset + 4), crc32c(b.payload), 'stored CRC is crc32c(payload)')
    }
    if (scan.batches.length) assert.is(scan.batches[0].batch.seq, s.first, 'a segment is named by its first batch')
  }
  return segs
}

function checkChain (entries, printed, { from = 1, prev = zeroHash } = {}) {
  let expectSeq = from
  for (const { batch, payload } of entries) {
    if (batch.seq < from) { prev = chainHash(payload); expectSeq = batch.seq + batch.records.length; continue }
    assert.is(batch.seq, expectSeq, 'sequences continue')
    assert.is(hex(batch.prev), hex(prev), `batch ${batch.seq} links to the one before`)
    const h = chainHash(payload)
    if (printed) assert.is(hex(h), printed.get(batch.seq)?.hash, `C printed the TS chain hash of batch ${batch.seq}`)
    if (printed) assert.is(batch.records.length, printed.get(batch.seq)?.count)
    prev = h
    expectSeq = batch.seq + batch.records.length
  }
  return { nextSeq: expectSeq, hash: prev }
}

test('known answers: CRC-32C check value and continuation, UTF-8 and record bounds', () => {
  const r = run('selftest')
  assert.is(r.code, 0, r.err + r.out)
  assert.is(crc32c(Buffer.from('123456789')), 0xe3069283, 'the TS side agrees on the check value')
  assert.is(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234'))), 0xe3069283, 'and on continuing')
})

test('C writes, TS reads: every record field, CRCs, the chain and its hashes', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const r = run('write', dir, 'grp', 256 * 1024)
  assert.is(r.code, 0, r.err)
  const { batches, end } = parseWrite(r.out)
  assert.is(batches.size, 42)
  const segs = await checkFrames(dir)
  assert.ok(segs.length >= 3, `rotated at 256 KiB (${segs.length} segments)`)
  const { j, entries } = await readAll(dir, 'grp')
  assert.is(j.recovery, null, 'no torn tail')
  assert.is(j.nextSeq, end.nextSeq)
  assert.is(hex(j.lastHash), end.hash)
  const tail = checkChain(entries, batches)
  assert.is(tail.nextSeq, end.nextSeq)
  const now = Date.now()
  for (const { batch } of entries) {
    assert.is(batch.v, formatVersion)
    assert.is(batch.group, 'grp')
    assert.is(batch.sync, false)
    assert.ok(batch.ts <= now && batch.ts > now - 120_000, 'ts is ms since the epoch')
  }
  const records = entries.flatMap(e => e.batch.records)
  for (const t of [0, 1]) assert.equal(records.filter(x => x.vol === t).map(plain), expected(t), `thread ${t}'s records`)
  assert.is(fs.statSync(join(dir, 'activity.log')).size, 0, 'a clean close empties the activity log')
})

test('C continues a journal TS wrote (the handover), in the same segment', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const j = await Journal.open(dir, { group: 'grp', segmentBytes: 8 << 20 })
  j.appendRecords([{ kind: 'mkdir', vol: 0, path: 'x', mode: 0o755 }], false)
  j.appendRecords([{ kind: 'write', vol: 0, path: 'x/y', off: 3, data: Buffer.from('abc') }], true)
  const { nextSeq, lastHash } = j
  await j.close()
  const r = run('write', dir, 'grp', 8 << 20, nextSeq, hex(lastHash))
  assert.is(r.code, 0, r.err)
  const { batches, end } = parseWrite(r.out)
  const segs = await checkFrames(dir)
  assert.is(segs.length, 1, 'appended to the segment TS left')
  const { entries } = await readAll(dir, 'grp')
  const tail = checkChain(entries, batches, { from: nextSeq, prev: lastHash })
  assert.is(tail.nextSeq, end.nextSeq)
  assert.is(hex(tail.hash), end.hash)
  assert.is(entries[0].batch.records[0].path, 'x')
})

/** A journal written by TS: every kind, large numbers, several segments. */
async function tsJournal (dir, group, { base } = {}) {
  const j = await Journal.open(dir, { group, segmentBytes: 4096 })
  if (base) await j.rebase(base, Buffer.alloc(16, 7))
  const recs = [
    { kind: 'mkdir', vol: 0, path: 'd', mode: 0o755 },
    { kind: 'create', vol: 0, path: 'd/ü', mode: 0o644 },
    { kind: 'write', vol: 1, path: '', off: 2 ** 40, data: Buffer.alloc(10000, 3) },
    { kind: 'truncate', vol: 0, path: 'd/ü', size: 2 ** 33 },
    { kind: 'utimens', vol: 0, path: 'd/ü', atimeMs: -1500, mtimeMs: 1700000000123.5, atimeNs: 500000000, mtimeNs: 123500000 },
    { kind: 'setxattr', vol: 0, path: 'd/ü', name: 'user.x', value: Buffer.from([0, 255]), flags: 0 },
    { kind: 'symlink', vol: 0, path: 'd/l', target: '/abs' },
    { kind: 'rename', vol: 0, path: 'd/ü', to: 'd/v' },
    { kind: 'fsync', vol: 1, path: '' }
  ]
  for (let i = 0; i < recs.length; i += 2) j.appendRecords(recs.slice(i, i + 2), i % 4 === 0)
  const out = { nextSeq: j.nextSeq, lastHash: hex(j.lastHash) }
  await j.close()
  return out
}

test('TS writes, C verifies: accepts the TS end, refuses a wrong one or a flipped byte naming the file', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const { nextSeq, lastHash } = await tsJournal(dir, 'fx')
  const segs = await listSegments(dir)
  assert.ok(segs.length >= 2, 'several segments')
  const newest = segs[segs.length - 1].path

  let r = run('verify', dir, nextSeq, lastHash, 'fx')
  assert.is(r.code, 0, r.err)
  assert.match(r.out, /^ok/)

  r = run('verify', dir, nextSeq, '00'.repeat(16), 'fx')
  assert.is(r.code, 1)
  assert.ok(r.err.includes(newest), `names the file: ${r.err}`)
  assert.match(r.err, new RegExp(`next sequence ${nextSeq}, hash ${lastHash}`))

  r = run('verify', dir, nextSeq + 1, lastHash, 'fx')
  assert.is(r.code, 1)
  assert.ok(r.err.includes(newest), r.err)

  r = run('verify', dir, nextSeq, lastHash, 'another-group')
  assert.is(r.code, 1)
  assert.match(r.err, /another group/)

  const buf = fs.readFileSync(newest)
  const scan = scanBuffer(buf, newest)
  const last = scan.batches[scan.batches.length - 1]
  buf[last.offset + 8 + 20] ^= 0x40
  fs.writeFileSync(newest, buf)
  r = run('verify', dir, nextSeq, lastHash, 'fx')
  assert.is(r.code, 1)
  assert.ok(r.err.includes(newest), r.err)
  assert.match(r.err, new RegExp(`at byte ${last.offset}: frame CRC mismatch`))
})

test('TS sequences past 2^32 (cbor-x writes them as float64) verify in C', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const { nextSeq, lastHash } = await tsJournal(dir, 'fx', { base: 2 ** 32 + 5 })
  assert.ok(nextSeq > 2 ** 32)
  const r = run('verify', dir, nextSeq, lastHash, 'fx')
  assert.is(r.code, 0, r.err)
})

test('the committed fixtures: ok verifies; crc-mismatch and torn-tail are refused, naming the file', async () => {
  const fx = join(ROOT, 'test', 'fixtures', 'journal')
  const j = await Journal.open(join(fx, 'ok'), { group: 'fixture', readOnly: true })
  const r = run('verify', join(fx, 'ok'), j.nextSeq, hex(j.lastHash), 'fixture')
  assert.is(r.code, 0, r.err)
  for (const bad of ['crc-mismatch', 'torn-tail']) {
    const segs = await listSegments(join(fx, bad))
    const r2 = run('verify', join(fx, bad), j.nextSeq, hex(j.lastHash), 'fixture')
    assert.is(r2.code, 1, bad)
    assert.ok(r2.err.includes(segs[segs.length - 1].path), `${bad}: ${r2.err}`)
  }
})

test('sync mode: writes wait for the ack, fsyncs for the ack of the disk, falls back once on timeout, batches carry sync', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const r = run('sync', dir, 'grp')
  assert.is(r.code, 0, r.err + r.out)
  const m = /^seqs (.+)$/m.exec(r.out)
  const [s1, s2a, s2b, s2c, s3, s4, s5] = m[1].split(' ').map(Number)
  const { entries } = await readAll(dir, 'grp')
  const syncOf = new Map(entries.map(e => [e.batch.seq, e.batch.sync]))
  for (const s of [s1, s2a, s2b, s2c, s4, s5]) assert.is(syncOf.get(s), true, `batch ${s} was appended in sync mode`)
  assert.is(syncOf.get(s3), false, 'appended while fallen back')
})

test('track mode: records queued as record maps, their marks hot until released', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const r = run('track', dir, 'grp')
  assert.is(r.code, 0, r.err + r.out)
  const tracked = (label) => {
    const m = new RegExp(`^${label} (\\d+) ([0-9a-f]+)$`, 'm').exec(r.out)
    const arr = decodeValue(Buffer.from(m[2], 'hex'))
    assert.ok(Array.isArray(arr))
    assert.is(arr.length, Number(m[1]))
    return arr.map(validateRecord).map(plain)
  }
  assert.equal(tracked('tracked1'), [
    plain({ kind: 'write', vol: 0, path: 't/a', off: 0, data: Buffer.from('AAAA') }),
    { kind: 'truncate', vol: 0, path: 't/a', size: 4 }
  ])
  assert.equal(tracked('tracked2'), [{ kind: 'chmod', vol: 0, path: 't/b', mode: 0o640 }])
  const marksIn = async (file) => {
    const d = tempDir('native-activity')
    fs.copyFileSync(join(dir, file), join(d, 'activity.log'))
    const { log, leftover } = await ActivityLog.open(d)
    log.close()
    return leftover.map(m => `${m.vol} ${m.kind} ${m.region} ${m.path}`)
  }
  assert.equal((await marksIn('activity.1')).sort(), ['0 meta -1 t/b', '0 region 0 t/a'], 'compacted to the tracked marks')
  const after = await marksIn('activity.2')
  assert.ok(!after.includes('0 meta -1 t/b') && !after.includes('0 region 0 t/a'), 'released marks compacted away')
  assert.match(r.out, /^closed_size 0$/m)
})

test('a write that does not fit (RLIMIT_FSIZE) fails EFBIG and leaves no half frame; appends go on', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const r = run('full', dir, 'grp')
  assert.is(r.code, 0, r.err + r.out)
  const end = /^end (\d+) ([0-9a-f]{32})$/m.exec(r.out)
  await checkFrames(dir)
  const { j, entries } = await readAll(dir, 'grp')
  assert.is(j.recovery, null, 'nothing torn')
  const tail = checkChain(entries)
  assert.is(tail.nextSeq, Number(end[1]))
  assert.is(hex(tail.hash), end[2])
  const d = tempDir('native-activity')
  fs.copyFileSync(join(dir, 'activity.full'), join(d, 'activity.log'))
  const { log, leftover } = await ActivityLog.open(d)
  log.close()
  assert.ok(leftover.some(m => m.path === 'full' && m.kind === 'region' && m.region === 3), 'the failed write\'s region stays hot')
})

test('rebase drops every segment; history continues after the given hash', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const r = run('rebase', dir, 'grp')
  assert.is(r.code, 0, r.err + r.out)
  const end = /^end (\d+) ([0-9a-f]{32})$/m.exec(r.out)
  const segs = await checkFrames(dir)
  assert.equal(segs.map(x => x.first), [1000])
  const { entries } = await readAll(dir, 'grp')
  const tail = checkChain(entries, null, { from: 1000, prev: Buffer.alloc(16, 7) })
  assert.is(entries[0].batch.seq, 1000)
  assert.is(tail.nextSeq, Number(end[1]))
  assert.is(hex(tail.hash), end[2])
  assert.is(run('verify', dir, end[1], end[2], 'grp').code, 0)
})

test('stress: 6 writers with syncs and rotations, JS appends under a lock let go on another thread: one clean chain', async () => {
  const dir = join(tempDir('native-golden'), 'state')
  const r = run('stress', dir, 'grp')
  assert.is(r.code, 0, r.err + r.out)
  const end = /^end (\d+) ([0-9a-f]{32}) batches (\d+) encoded (\d+)$/m.exec(r.out)
  const segs = await checkFrames(dir)
  assert.ok(segs.length > 10, `rotated often (${segs.length} segments)`)
  const { j, entries } = await readAll(dir, 'grp')
  assert.is(j.recovery, null)
  assert.is(entries.length, Number(end[3]))
  const tail = checkChain(entries)
  assert.is(tail.nextSeq, Number(end[1]))
  assert.is(hex(tail.hash), end[2])
  const restates = entries.filter(e => e.batch.records[0].path === 'js')
  assert.is(restates.length, Number(end[4]), 'every encoded batch is there, verbatim')
  assert.equal(restates[0].batch.records, [{ kind: 'fsync', vol: 0, path: 'js' }])
  assert.is(run('verify', dir, end[1], end[2], 'grp').code, 0)
})

test.run()
