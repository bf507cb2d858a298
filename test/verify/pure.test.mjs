// timeout: 30
// Online verify, the pure parts: the verify messages decode only when every
// field has its type and bound; the comparison of two answers read at one
// sequence names each kind of difference; ranges and hard-link partitions.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeMessage, encodeMessage, verifyItemsMax, verifyNamesMax, verifyReadBytesMax } from '../../dist/replicate/messages.js'
import { encodeValue } from '../../dist/journal/codec.js'
import { compareEntries, differingRanges, coalesce, linkPartition, summaryLine, describeMismatch } from '../../dist/replicate/verify-compare.js'

const b = (n, fill = 1) => new Uint8Array(n).fill(fill)
const item = { vol: 1, path: 'a/b', entry: true, list: false, off: 0, len: 65536, block: 4096 }
const entry = { type: 'file', mode: 0o100644, uid: 0, gid: 0, size: 5, nlink: 1, link: 0, target: '', xattrs: [{ name: 'user.k', sum: b(16) }] }
const good = {
  verify: { t: 'verify', id: 3, at: 99, items: [item] },
  verified: { t: 'verified', id: 3, at: 99, missed: false, consistent: true, answers: [{ entry, names: ['x', 'y'], more: false, sums: [b(16)] }, { entry: null, names: null, more: true, sums: [] }] }
}
const plain = v => v instanceof Uint8Array ? Buffer.from(v).toString('hex')
  : Array.isArray(v) ? v.map(plain)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v
const code = fn => { try { fn() } catch (err) { return err.code ?? `untyped: ${err.message}` } return 'accepted' }
const rejects = (v, what) => assert.is(code(() => decodeMessage(encodeValue(v))), 'BAD_MESSAGE', what)

test('verify messages round-trip', () => {
  for (const m of Object.values(good)) assert.equal(plain(decodeMessage(encodeMessage(m))), plain(m))
})

test('verify messages: missing fields, wrong types, bounds', () => {
  for (const m of Object.values(good)) {
    for (const k of Object.keys(m)) {
      if (k === 't') continue
      const c = { ...m }
      delete c[k]
      rejects(c, `${m.t} without ${k}`)
    }
  }
  for (const k of Object.keys(item)) {
    const c = { ...item }
    delete c[k]
    rejects({ ...good.verify, items: [c] }, `item without ${k}`)
  }
  rejects({ ...good.verify, items: [{ ...item, vol: 64 }] }, 'volume out of range')
  rejects({ ...good.verify, items: [{ ...item, block: 100 }] }, 'block too small')
  rejects({ ...good.verify, items: [{ ...item, path: '/etc'.repeat(2000) }] }, 'path too long')
  rejects({ ...good.verify, items: Array.from({ length: verifyItemsMax + 1 }, () => item) }, 'too many items')
  rejects({ ...good.verify, items: [{ ...item, len: verifyReadBytesMax + 1 }] }, 'reads too much')
  const answer = { entry, names: null, more: false, sums: [] }
  rejects({ ...good.verified, answers: [{ ...answer, sums: [b(15)] }] }, 'short sum')
  rejects({ ...good.verified, answers: [{ ...answer, entry: { ...entry, type: 'fifo' } }] }, 'entry type')
  rejects({ ...good.verified, answers: [{ ...answer, entry: { ...entry, xattrs: [{ name: 'user.k' }] } }] }, 'xattr without sum')
  rejects({ ...good.verified, answers: [{ ...answer, names: [1] }] }, 'name not a string')
  rejects({ ...good.verified, answers: [{ ...answer, names: Array.from({ length: verifyNamesMax + 1 }, (_, i) => `n${i}`) }] }, 'too many names')
  const { more, ...noMore } = answer
  rejects({ ...good.verified, answers: [noMore] }, 'answer without more')
})

test('compareEntries names each difference', () => {
  const f = { ...entry, xattrs: [] }
  assert.equal(compareEntries(f, f), [])
  assert.equal(compareEntries({ ...f, type: 'absent' }, { ...f, type: 'absent', size: 9 }), [])
  assert.is(compareEntries(f, { ...f, type: 'absent' })[0].kind, 'missing')
  assert.is(compareEntries({ ...f, type: 'absent' }, f)[0].kind, 'extra')
  assert.is(compareEntries(f, { ...f, type: 'dir', mode: 0o40644 })[0].kind, 'type')
  assert.equal(compareEntries(f, { ...f, mode: 0o100600 }).map(d => d.detail), ['primary 0644, secondary 0600'])
  assert.is(compareEntries(f, { ...f, uid: 5 })[0].kind, 'owner')
  assert.is(compareEntries(f, { ...f, size: 6 })[0].kind, 'size')
  assert.is(compareEntries(f, { ...f, nlink: 2 })[0].kind, 'links')
  const s = { ...f, type: 'symlink', target: 'a', mode: 0o120777 }
  assert.is(compareEntries(s, { ...s, target: 'b' })[0].kind, 'target')
  assert.equal(compareEntries(s, { ...s, mode: 0o120755 }), [], 'a symlink has no mode of its own')
  const x = compareEntries({ ...f, xattrs: [{ name: 'user.a', sum: b(16, 1) }, { name: 'user.b', sum: b(16) }] },
    { ...f, xattrs: [{ name: 'user.a', sum: b(16, 2) }, { name: 'user.c', sum: b(16) }] })
  assert.is(x[0].kind, 'xattr')
  assert.equal(x[0].extraXattrs, ['user.c'])
  assert.match(x[0].detail, /missing on the secondary: user.b; only on the secondary: user.c; values differ: user.a/)
  const d = { ...f, type: 'dir', mode: 0o40755, nlink: 0 }
  assert.equal(compareEntries(d, { ...d, size: 4096 }), [], 'a directory\'s size is not its content')
})

test('differingRanges and coalesce', () => {
  const s = n => b(16, n)
  assert.equal(differingRanges(0, 16384, 4096, [s(1), s(2), s(3), s(4)], [s(1), s(9), s(9), s(4)]), [[4096, 12288]])
  assert.equal(differingRanges(8192, 10000, 4096, [s(1), s(2), s(3)], [s(1), s(2)]), [[16384, 18192]], 'a block only one side has')
  assert.equal(differingRanges(0, 4096, 4096, [], []), [])
  assert.equal(coalesce([[10, 20], [0, 5], [5, 8], [19, 30]]), [[0, 8], [10, 30]])
})

test('linkPartition compares hard-link structure by position', () => {
  const e = link => ({ ...entry, link })
  assert.is(linkPartition([e(0), e(0), e(2)]), linkPartition([e(0), e(0), e(2)]))
  assert.is.not(linkPartition([e(0), e(0), e(2)]), linkPartition([e(0), e(1), e(1)]))
  assert.is(linkPartition([e(0), { ...entry, type: 'absent', link: 1 }]), '0')
})

test('summary and mismatch lines', () => {
  const r = { clean: false, found: [{ kind: 'data', volume: 'v', path: 'f', ranges: [[0, 4096]] }, { kind: 'mode', volume: 'v', path: 'g', detail: 'x' }], remaining: [], repaired: false, bytesCompared: 1 << 20, entriesCompared: 3, seconds: 2, fromSeq: 1, toSeq: 5 }
  assert.match(summaryLine(r), /^verify: DIVERGENT: 2 mismatches \(1 data, 1 mode\); 3 entries and 1.0 MiB compared in 2.0 s \(512.0 KiB\/s\), sequences 1..5$/)
  assert.match(summaryLine({ ...r, repaired: true, clean: true }), /^verify: repaired: 2 mismatches/)
  assert.match(summaryLine({ ...r, found: [] }), /^verify: clean: /)
  assert.is(describeMismatch(r.found[0]), 'v:f: data differs in bytes 0-4095 (4.0 KiB)')
})

test.run()
