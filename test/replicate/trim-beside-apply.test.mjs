// The secondary's trims (receiver.ts trimSoon) run beside the apply: while a
// trim waits for the disk to take the copy's files, batches still arrive,
// apply and are acknowledged; a file written again meanwhile is flushed by
// the next trim before the journal lets go of what wrote it.
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

test('batches apply and are acknowledged while a trim waits for the disk; a file written meanwhile is flushed again before its batches go', async () => {
  const base = tempDir('trim-beside')
  const state = join(base, 'state')
  const copy = join(base, 'copy')
  fs.mkdirSync(copy)
  fs.writeFileSync(join(copy, 'f'), '') // the copy has the file the batches write
  const specs = [{ num: 0, name: 'data', kind: 'dir', path: copy, size: 0 }]
  const journal = await Journal.open(state, { group: 'g', segmentBytes: 64 * 1024 })
  const vols = await openVolumes(specs)
  // The copy's fsync, held until the gate opens.
  let open = () => {}
  const gate = new Promise(resolve => { open = resolve })
  const fsyncs = []
  const vol = vols.get(0)
  const realFsync = vol.fsync.bind(vol)
  vol.fsync = async (p) => { fsyncs.push(p); await gate; return realFsync(p) }

  const secondary = new Secondary(journal, new ApplyTarget(vols, specs), { role: 'secondary', group: 'g', node: 'sec', volumes, secret }, l => process.env.DEBUG && console.log('secondary:', l))
  const server = await listen('127.0.0.1', 0, null, c => secondary.attach(c), () => {})
  const conn = await connect('127.0.0.1', server.address().port, null, 5000)
  let applied = 0
  try {
    await handshake(conn, { role: 'primary', group: 'g', node: 'pri', volumes, secret }, 5000)
    conn.on('message', m => { if (m.t === 'ack') applied = Math.max(applied, m.applied) })
    conn.resume()
    let seq = journal.nextSeq
    let prev = journal.lastHash
    const written = Buffer.alloc(pieceBytes * 4)
    const send = (n) => {
      for (let i = 0; i < n; i++, seq++) {
        const data = randomBytes(pieceBytes)
        const off = ((seq - 1) % 4) * pieceBytes // the same file over and over
        data.copy(written, off)
        const payload = encodeBatch({ v: formatVersion, group: 'g', seq, prev, ts: Date.now(), sync: false, records: [{ kind: 'write', vol: 0, path: 'f', off, data }] })
        conn.sendBatch(payload)
        prev = chainHash(payload)
      }
    }
    send(6) // the second segment begins at the fifth: the first can go
    await until('a trim flushing the copy', () => fsyncs.length === 1)
    const first = seq - 1
    await until('the batches sent before the trim applied', () => applied >= first)
    send(8)
    await until('the batches sent while the trim waits for the disk applied', () => applied >= seq - 1)
    assert.is(fsyncs.length, 1, 'one flush at a time')
    assert.is(journal.checkpoint.acked, 0, 'nothing trimmed before the copy is on disk')
    assert.equal(fs.readFileSync(join(copy, 'f')), written, 'the copy holds every batch')

    open()
    await until('the journal trimmed to its newest segment', () => journal.firstSeq === seq - 2)
    assert.is(journal.checkpoint.acked, seq - 1, 'acknowledged through the last batch')
    assert.is(fsyncs.length, 2, 'the file written during the first flush is flushed again before its batches are trimmed')
  } finally {
    open()
    conn.close()
    server.close()
    await secondary.close()
    await closeVolumes(vols)
    await journal.close()
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test.run()
