// timeout: 90
// Found by the network fuzzer (scripts/fuzz.mjs): an authenticated peer's `rebase` to
// sequence 0 put the secondary's applied sequence at -1 (a RangeError writing its cursor),
// and a batch whose records ran past 2^53-1 put it at an inexact number; either way every
// primary was refused from then on (serve's `state` message failed their validation). A
// rebase to 0 is now a BAD_MESSAGE and such a batch a BAD_BATCH, like any malformed field:
// the connection ends with the code, the copy is untouched and a real primary still
// replicates.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { bounded } from '../helpers/mount.mjs'
import { decodeMessage } from '../../dist/replicate/messages.js'
import { encodeValue, decodeBatch } from '../../dist/journal/codec.js'
import { makeEnv, startServe, primaryClient, zeroHash, sleep, status, assertStillServes, batch } from './env.mjs'

test('decodeMessage refuses a rebase to sequence 0, takes one to 1', () => {
  const m = (seq) => encodeValue({ t: 'rebase', seq, prev: zeroHash, generation: 'g', full: false })
  assert.throws(() => decodeMessage(m(0)), err => err.code === 'BAD_MESSAGE' && /sequences start at 1/.test(err.message))
  assert.is(decodeMessage(m(1)).seq, 1)
})

test('decodeBatch refuses a batch whose last sequence passes 2^53-1', () => {
  const fsync = { kind: 'fsync', vol: 0, path: 'f' }
  assert.is(decodeBatch(batch([fsync], { seq: 2 ** 53 - 1 })).seq, 2 ** 53 - 1)
  assert.throws(() => decodeBatch(batch([fsync, fsync], { seq: 2 ** 53 - 1 })), err => err.code === 'BAD_BATCH' && /run past/.test(err.message))
})

test('a rebase to 0 from an authenticated peer: BAD_MESSAGE, applied stays 0, a real primary still replicates', bounded(60_000, async () => {
  const E = makeEnv('faults-rebase0')
  const port = 17770
  let serve
  try {
    serve = await startServe(E, port)
    const c = await primaryClient(E, port)
    c.conn.send({ t: 'rebase', seq: 0, prev: zeroHash, generation: 'attacker', full: false })
    const why = await Promise.race([c.closed, sleep(5000).then(() => 'still open')])
    c.conn.destroy()
    assert.match(String(why?.message ?? why), /peer reports BAD_MESSAGE/)
    const st = await status(E.sstate)
    assert.is(st.appliedSeq, 0)
    // A rebase near the top, then a batch running past it.
    const c2 = await primaryClient(E, port)
    c2.conn.send({ t: 'rebase', seq: 2 ** 53 - 1, prev: zeroHash, generation: 'attacker', full: false })
    c2.conn.send({ t: 'batch', b: batch([{ kind: 'fsync', vol: 0, path: 'f' }, { kind: 'fsync', vol: 0, path: 'f' }], { seq: 2 ** 53 - 1 }) })
    const why2 = await Promise.race([c2.closed, sleep(5000).then(() => 'still open')])
    c2.conn.destroy()
    assert.match(String(why2?.message ?? why2), /peer reports BAD_BATCH/)
    assert.not.match(serve.err, /RangeError|ERR_OUT_OF_RANGE/)
    await assertStillServes(E, port)
    assert.is(E.outsideChanges(), null)
    assert.is(serve.exited, null)
  } finally {
    await serve?.stop()
    E.cleanupOutside()
  }
}))

test.run()
