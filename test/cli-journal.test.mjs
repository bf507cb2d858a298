// Journal fixtures (test/fixtures/journal/{ok,torn-tail,crc-mismatch}) read
// by the journal itself and by `replfs journal inspect|replay`, run as a
// child process the way an operator runs them.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Journal } from '../dist/journal/journal.js'
import { batches, lastFrameOffset } from './fixtures/journal/make.mjs'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixtures = path.join(repo, 'test', 'fixtures', 'journal')
const fixture = (name) => path.join(fixtures, name)
const seg2 = '00000000000000000007.seg'
const tmpRoot = process.env.REPLFS_TEST_TMP || os.tmpdir()
let tmp

// The entry point (dist/cli.js) is the lead's; this shim registers only the
// journal verbs, so the test runs whatever else exists.
const shim = `import { Command } from 'commander'
import { registerJournal } from './dist/cli/journal.js'
const p = new Command('replfs'); p.exitOverride(); registerJournal(p)
await p.parseAsync(process.argv.slice(1), { from: 'user' })`

function cli (...args) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', shim, '--', ...args], { cwd: repo, encoding: 'utf8' })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

function copyFixture (name) {
  const dir = path.join(tmp, name)
  fs.cpSync(fixture(name), dir, { recursive: true })
  return dir
}

async function readAll (j, from = 1) {
  const out = []
  for await (const { batch } of j.read(from)) out.push(batch)
  return out
}

test.before.each(() => {
  fs.mkdirSync(tmpRoot, { recursive: true })
  tmp = fs.mkdtempSync(path.join(tmpRoot, 'replfs-cli-journal-'))
})
test.after.each(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

test('ok: a read-only open sees no damage and reads every record in order', async () => {
  const j = await Journal.open(fixture('ok'), { group: 'fixture', readOnly: true })
  assert.is(j.recovery, null)
  assert.is(j.nextSeq, 14)
  const got = await readAll(j)
  await j.close()
  assert.equal(got.map(b => b.seq), [1, 4, 7, 10, 12])
  assert.equal(got.flatMap(b => b.records.map(r => `${r.kind}:${r.path}`)), batches.flat().map(r => `${r.kind}:${r.path}`))
  assert.not.ok(fs.existsSync(path.join(fixture('ok'), 'lock')), 'a read-only open takes no lock')
})

for (const [name, reason] of [['torn-tail', 'short'], ['crc-mismatch', 'crc']]) {
  test(`${name}: read-only open reports the damage, leaves the file, reads the good prefix`, async () => {
    const seg = path.join(fixture(name), seg2)
    const size = fs.statSync(seg).size
    const j = await Journal.open(fixture(name), { group: 'fixture', readOnly: true })
    assert.is(j.recovery?.reason, reason)
    assert.is(j.recovery.offset, lastFrameOffset(path.join(fixture('ok'), seg2)))
    assert.is(j.recovery.cutBytes, size - j.recovery.offset)
    assert.is(j.nextSeq, 12)
    assert.equal((await readAll(j)).map(b => b.seq), [1, 4, 7, 10])
    await j.close()
    assert.is(fs.statSync(seg).size, size)
  })

  test(`${name}: a writable open cuts the tail, and the chain continues from the good prefix`, async () => {
    const dir = copyFixture(name)
    const j = await Journal.open(dir, { group: 'fixture' })
    assert.is(j.recovery?.reason, reason)
    assert.is(fs.statSync(path.join(dir, seg2)).size, j.recovery.offset)
    const a = await j.appendRecords(batches[4], false) // the lost batch, again
    assert.is(a.seq, 12)
    await j.close()
    const again = await Journal.open(dir, { group: 'fixture' })
    assert.is(again.recovery, null)
    assert.is(again.nextSeq, 14)
    assert.equal((await readAll(again)).map(b => b.seq), [1, 4, 7, 10, 12])
    await again.close()
  })
}

test('inspect --json: segments, counts by operation and volume, data bytes', () => {
  const r = cli('journal', 'inspect', fixture('ok'), '--json')
  assert.is(r.code, 0, r.err)
  const rep = JSON.parse(r.out)
  assert.is(rep.group, 'fixture')
  assert.equal(rep.segments.map(s => [s.name, s.first, s.last, s.batches, s.damage]),
    [['00000000000000000001.seg', 1, 6, 2, null], [seg2, 7, 13, 3, null]])
  assert.is(rep.recovery, null)
  assert.is(rep.batches, 5)
  assert.is(rep.records, 13)
  assert.is(rep.dataBytes, 6 + 6 + 512 + 4)
  assert.equal(rep.byVolume, { data: 10, disk: 3 })
  assert.is(rep.byKind.write, 4)
  assert.is(rep.byKind.rename, 1)
})

for (const [name, reason] of [['torn-tail', 'short'], ['crc-mismatch', 'crc']]) {
  test(`inspect reports ${name}`, () => {
    const j = JSON.parse(cli('journal', 'inspect', fixture(name), '--json').out)
    assert.is(j.segments[1].damage.reason, reason)
    assert.is(j.segments[1].last, 11)
    assert.is(j.recovery.reason, reason)
    assert.is(j.records, 11)
    const t = cli('journal', 'inspect', fixture(name))
    assert.is(t.code, 0)
    assert.match(t.out, new RegExp(`${seg2}.*DAMAGED at byte \\d+ \\(${reason}\\)`))
    assert.match(t.out, /torn tail: \d+ bytes/)
  })
}

test('inspect --records lists every record in order', () => {
  const r = cli('journal', 'inspect', fixture('ok'), '--records')
  const rows = r.out.split('\n').filter(l => /^\d+\t/.test(l))
  assert.is(rows.length, 13)
  assert.equal(rows.map(l => Number(l.split('\t')[0])), [...Array(13).keys()].map(i => i + 1))
  assert.is(rows[2], '3\tdata\twrite d/f @0 +6')
  assert.is(rows[4], '5\tdisk\twrite  @4096 +512')
  const json = JSON.parse(cli('journal', 'inspect', fixture('ok'), '--json', '--records').out)
  assert.equal(json.list[4], { seq: 5, vol: 'disk', kind: 'write', path: '', off: 4096, len: 512, what: 'write  @4096 +512' })
})

function targets () {
  const data = path.join(tmp, 'data')
  fs.mkdirSync(data, { recursive: true })
  return { data, img: path.join(tmp, 'disk.img'), args: ['--volume', `data=${data}`, '--image', `disk=${path.join(tmp, 'disk.img')}`] }
}

test('replay applies the whole journal to the named targets', () => {
  const t = targets()
  const r = cli('journal', 'replay', fixture('ok'), ...t.args)
  assert.is(r.code, 0, r.err)
  assert.match(r.out, /replayed 13 records in 5 batches \(sequences 1\.\.13\)/)
  assert.equal(fs.readdirSync(t.data), ['d'])
  assert.equal(fs.readdirSync(path.join(t.data, 'd')).sort(), ['f', 'h'])
  assert.is(fs.readFileSync(path.join(t.data, 'd', 'h'), 'utf8'), 'hello')
  assert.is(fs.statSync(path.join(t.data, 'd', 'f')).ino, fs.statSync(path.join(t.data, 'd', 'h')).ino)
  const img = fs.readFileSync(t.img)
  assert.is(img.length, 65536)
  assert.is(img.subarray(0, 4).toString(), 'MBR!')
  assert.ok(img.subarray(4096, 4608).every(x => x === 7))
})

test('replay --to stops at a sequence; --from picks up from the next one', () => {
  const t = targets()
  assert.is(cli('journal', 'replay', fixture('ok'), ...t.args, '--to', '9').code, 0)
  assert.is(fs.readlinkSync(path.join(t.data, 'd', 'l')), 'f')
  assert.is(fs.statSync(path.join(t.data, 'g')).mode & 0o777, 0o600)
  assert.is(fs.readFileSync(t.img).subarray(0, 4).toString('hex'), '00000000')
  const r = cli('journal', 'replay', fixture('ok'), ...t.args, '--from', '10')
  assert.match(r.out, /replayed 4 records in 2 batches \(sequences 10\.\.13\)/)
  assert.equal(fs.readdirSync(path.join(t.data, 'd')).sort(), ['f', 'h'])
  assert.is(fs.readFileSync(t.img).subarray(0, 4).toString(), 'MBR!')
})

test('replay of a damaged journal applies the good prefix and says so', () => {
  const t = targets()
  const r = cli('journal', 'replay', fixture('crc-mismatch'), ...t.args)
  assert.is(r.code, 0, r.err)
  assert.match(r.err, /torn tail \(crc/)
  assert.match(r.out, /replayed 11 records/)
  assert.ok(fs.existsSync(path.join(t.data, 'd', 'l')), 'the unlink of d/l was in the damaged batch')
})

test('replay errors: one line on stderr, non-zero exit, nothing applied', () => {
  const t = targets()
  const cases = [
    [['--volume', `data=${t.data}`], /^replfs: USAGE: the journal has records for volume\(s\) disk but no target/],
    [[...t.args, '--volume', `nope=${t.data}`], /^replfs: USAGE: volume nope is not in group fixture/],
    [['--volume', `disk=${t.img}`, '--volume', `data=${t.data}`], /^replfs: USAGE: volume disk is an image volume: give it with --image/],
    [['--volume', 'data'], /^replfs: USAGE: "data" is not NAME=DIR/],
    [[...t.args, '--from', '9', '--to', '3'], /^replfs: USAGE: --from 9 is after --to 3/]
  ]
  for (const [args, re] of cases) {
    const r = cli('journal', 'replay', fixture('ok'), ...args)
    assert.is(r.code, 1, args.join(' '))
    assert.match(r.err, re)
    assert.is(r.err.trim().split('\n').length, 1)
  }
  assert.equal(fs.readdirSync(t.data), [])
  const none = cli('journal', 'replay', path.join(tmp, 'nope'), ...t.args)
  assert.is(none.code, 1)
  assert.match(none.err, /^replfs: USAGE: cannot read .*group\.json/)
})

// A journal of format 1 (SHA-256 chain hashes, before XXH3-128): valid frames
// of another version are refused by name, never cut as damage (the records
// they hold may not be on any secondary yet).
test('format 1: an open, inspect and replay refuse it by name, and nothing is cut', async () => {
  const dir = copyFixture('format-1')
  const sizes = () => fs.readdirSync(dir).filter(n => n.endsWith('.seg')).map(n => fs.statSync(path.join(dir, n)).size)
  const before = sizes()
  for (const readOnly of [true, false]) {
    const err = await Journal.open(dir, { group: 'fixture', readOnly }).then(() => null, e => e)
    assert.is(err?.code, 'VERSION_MISMATCH', `open (readOnly ${readOnly})`)
    assert.match(err.message, /0000000000000000000[17]\.seg at byte 0: batch format version 1, this replfs reads 2/)
  }
  const r = cli('journal', 'inspect', dir)
  assert.is(r.code, 1)
  assert.match(r.err, /^replfs: VERSION_MISMATCH: .*format-1\/00000000000000000001\.seg at byte 0: batch format version 1/)
  const t = targets()
  const replay = cli('journal', 'replay', dir, ...t.args)
  assert.is(replay.code, 1)
  assert.match(replay.err, /^replfs: VERSION_MISMATCH: .*format-1\/0000000000000000000[17]\.seg at byte 0: batch format version 1/)
  assert.equal(fs.readdirSync(t.data), [], 'nothing replayed')
  assert.equal(sizes(), before, 'no segment cut')
})

test('replay from a trimmed journal: an explicit --from before it is refused; a failure names its sequence', () => {
  const dir = copyFixture('ok')
  fs.rmSync(path.join(dir, '00000000000000000001.seg'))
  const t = targets()
  const gap = cli('journal', 'replay', dir, ...t.args, '--from', '1')
  assert.is(gap.code, 1)
  assert.match(gap.err, /^replfs: JOURNAL_GAP: the journal starts at sequence 7; 1\.\.6 are no longer in it/)
  const fail = cli('journal', 'replay', dir, ...t.args) // d/ was made by a trimmed record
  assert.is(fail.code, 1)
  assert.match(fail.err, /^replfs: APPLY_FAILED: sequence 7: volume data \(0\): symlink "d\/l" failed: ENOENT/)
})

test.run()
