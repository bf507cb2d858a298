// The secondary's trims (receiver.ts trimSoon) run beside the apply: while a
// trim waits for the disk to take the copy's files, batches still arrive,
// apply and are acknowledged; a file written again meanwhile is flushed by
// the next trim before the journal lets go of what wrote it; and once the
// journal holds 8 segments, the apply waits for the trim after all.
//
// A real secondary (journal, volumes, apply, TCP on loopback, handshake);
// the one thing held is the copy's fsync, which waits on a gate here as it
// waits on a busy disk in life (100-400 ms per segment under a stream of
// large writes, native-notes/performance.md 23).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { tempDir } from '../helpers/mount.mjs'
import { Journal } from '../../dist/journal/journal.js'
import { Secondary } from '../../dist/replicate/receiver.js'
import { ApplyTarget } from '../../dist/apply/target.js'
import { openVolumes, closeVolumes } from '../../dist/volume/volume.js'
import { listen, connect } from '../../dist/replicate/transport.js'
import { handshake } from '../../dist/replicate/handshake.js'
import { chainHash, encodeBatch } from '../../dist/journal/codec.js'
import { formatVersion } from '../../dist/core/limits.js'

const pieceBytes = 16 * 1024 // four batches fill a segment of 64 KiB
const secret = randomBytes(32)
const volumes = [{ name: 'data', kind: 'dir', size: 0 }]

async function until (what, ok, ms = 10_000) {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) assert.unreachable(`${what}: not within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** A secondary over loopback whose copy's fsync waits until `open()`; `send(n)`
 *  sends n batches of one 16 KiB write each to one file, four to a segment. */
async function withSecondary (fn) {
  const base = tempDir('trim-beside')
  const copy = join(base, 'copy')
  fs.mkdirSync(copy)
  fs.writeFileSync(join(copy, 'f'), '') // the copy has the file the batches write
  const specs = [{ num: 0, name: 'data', kind: 'dir', path: copy, size: 0 }]
  const journal = await Journal.open(join(base, 'state'), { group: 'g', segmentBytes: 64 * 1024 })
  const vols = await openVolumes(specs)
  let open = () => {}
  const gate = new Promise(resolve => { open = resolve })
  const fsyncs = []
  const vol = vols.get(0)
  const realFsync = vol.fsync.bind(vol)
  vol.fsync = async (p) => { fsyncs.push(p); await gate; return realFsync(p) }

  const secondary = new Secondary(journal, new ApplyTarget(vols, specs), { role: 'secondary', group: 'g', node: 'sec', volumes, secret }, l => process.env.DEBUG && console.log('secondary:', l))
  const server = await listen('127.0.0.1', 0, null, c => secondary.attach(c), () => {})
  const conn = await connect('127.0.0.1', server.address().port, null, 5000)
  try {
    await handshake(conn, { role: 'primary', group: 'g', node: 'pri', volumes, secret }, 5000)
    const t = { journal, fsyncs, open, applied: 0, seq: journal.nextSeq, written: Buffer.alloc(pieceBytes * 4), copy }
    conn.on('message', m => { if (m.t === 'ack') t.applied = Math.max(t.applied, m.applied) })
    conn.resume()
    let prev = journal.lastHash
    t.send = (n) => {
      for (let i = 0; i < n; i++, t.seq++) {
        const data = randomBytes(pieceBytes)
        const off = ((t.seq - 1) % 4) * pieceBytes // the same file over and over
        data.copy(t.written, off)
        const payload = encodeBatch({ v: formatVersion, group: 'g', seq: t.seq, prev, ts: Date.now(), sync: false, records: [{ kind: 'write', vol: 0, path: 'f', off, data }] })
        conn.sendBatch(payload)
        prev = chainHash(payload)
      }
    }
    await fn(t)
  } finally {
    open()
    conn.close()
    server.close()
    await secondary.close()
    await closeVolumes(vols)
    await journal.close()
    fs.rmSync(base, { recursive: true, force: true })
  }
}

test('batches apply and are acknowledged while a trim waits for the disk; a file written meanwhile is flushed again before its batches go', async () => {
  await withSecondary(async (t) => {
    t.send(6) // the second segment begins at the fifth: the first can go
    await until('a trim flushing the copy', () => t.fsyncs.length === 1)
    await until('the batches sent before the trim applied', () => t.applied >= t.seq - 1)
    t.send(8)
    await until('the batches sent while the trim waits for the disk applied', () => t.applied >= t.seq - 1)
    assert.is(t.fsyncs.length, 1, 'one flush at a time')
    assert.is(t.journal.checkpoint.acked, 0, 'nothing trimmed before the copy is on disk')
    assert.equal(fs.readFileSync(join(t.copy, 'f')), t.written, 'the copy holds every batch')

    t.open()
    await until('the journal trimmed to its newest segment', () => t.journal.firstSeq === t.seq - 2)
    assert.is(t.journal.checkpoint.acked, t.seq - 1, 'acknowledged through the last batch')
    assert.is(t.fsyncs.length, 2, 'the file written during the first flush is flushed again before its batches are trimmed')
  })
})

test('the apply waits for the trim once the journal holds 8 segments: a copy slow to flush does not let it grow without bound', async () => {
  await withSecondary(async (t) => {
    t.send(6)
    await until('a trim flushing the copy', () => t.fsyncs.length === 1)
    t.send(42) // 12 segments in all
    await until('every batch stored on arrival', () => t.journal.lastSeq === t.seq - 1)
    // Applying a 16 KiB write takes microseconds: without the bound all would be applied by now.
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.ok(t.applied < t.seq - 1, `the apply waits (applied ${t.applied} of ${t.seq - 1})`)
    assert.ok(t.journal.segmentCount >= 9, 'stored past the bound: only the apply waits')

    t.open()
    await until('everything applied once the trim is done', () => t.applied === t.seq - 1)
    await until('the journal trimmed to its newest segment', () => t.journal.firstSeq === t.seq - 4)
    assert.equal(fs.readFileSync(join(t.copy, 'f')), t.written, 'the copy holds every batch')
  })
})

test.run()
