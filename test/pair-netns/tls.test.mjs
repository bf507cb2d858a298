// timeout: 90
// TLS between the pair (loopback): a CA and certificates made with openssl in
// a temp dir. With --tls-cert/--tls-key/--tls-ca on both sides the pair
// replicates, and the listener speaks only TLS (a plain client gets no
// protocol hello). A primary whose certificate comes from another CA, or
// that speaks no TLS at all, is refused (logged at both ends) and nothing
// reaches the copy; a secondary with a certificate from another CA is
// refused by the primary.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { bounded, sh } from '../helpers/mount.mjs'
import { layout, startSecondary, startPrimary, waitSynced, stopAll, differences, status, sleep, waitFor } from '../helpers/pair.mjs'
import { runWorkload } from '../fs/workload.mjs'
import { FrameDecoder, encodeFrame } from '../../dist/journal/frame.js'
import { encodeValue } from '../../dist/journal/codec.js'

const ossl = (dir, args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })

/** A CA and certificates it signs, in `dir`: ca.pem, ca.key, NAME.pem, NAME.key. */
function makeCa (dir, cn, names) {
  fs.mkdirSync(dir, { recursive: true })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  ossl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${cn}`])
  fs.writeFileSync(join(dir, 'ext.cnf'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const n of names) {
    ossl(dir, ['req', ...ec, '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`])
    ossl(dir, ['x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.pem`, '-days', '2', '-extfile', 'ext.cnf'])
    fs.chmodSync(join(dir, `${n}.key`), 0o600)
  }
  return Object.fromEntries(names.map(n => [n, ['--tls-cert', join(dir, `${n}.pem`), '--tls-key', join(dir, `${n}.key`), '--tls-ca', join(dir, 'ca.pem')]]))
}

let pki
test.before(() => {
  const base = layout('tls-pki', { vols: [] }).base
  const good = makeCa(join(base, 'ca'), 'replfs test CA', ['secondary', 'primary'])
  const rogue = makeCa(join(base, 'rogue'), 'rogue CA', ['primary', 'secondary'])
  pki = { good, rogue }
  sh(`openssl verify -CAfile ${join(base, 'ca', 'ca.pem')} ${join(base, 'ca', 'primary.pem')}`)
})

test('TLS on both sides: the pair replicates; the listener speaks only TLS', bounded(60_000, async () => {
  const L = layout('tls-ok', { vols: ['one'], image: { name: 'disk', size: 1 << 20 } })
  fs.writeFileSync(join(L.p.one, 'before'), 'pre-existing')
  let sec, pri
  try {
    sec = await startSecondary(L, 17260, pki.good.secondary)
    pri = await startPrimary(L, 17260, { extra: pki.good.primary })
    await waitSynced(L, 30_000)
    runWorkload(L.mnt, ['one'], { steps: 120, seed: 5, image: 'disk', imageSize: 1 << 20 })
    const { p } = await waitSynced(L, 30_000)
    assert.is(p.peerState, 'streaming')
    assert.is(differences(L), null)
    // A plain TCP client with a protocol hello gets nothing of the protocol back.
    const got = await new Promise(resolve => {
      const s = net.connect({ host: '127.0.0.1', port: 17260 })
      let data = Buffer.alloc(0)
      s.on('connect', () => s.write(encodeFrame(encodeValue({ t: 'hello', proto: 1 }))))
      s.on('data', d => { data = Buffer.concat([data, d]) })
      s.on('error', () => {})
      s.on('close', () => resolve(data))
      setTimeout(() => { s.destroy(); resolve(data) }, 3000)
    })
    let frames = []
    try { frames = new FrameDecoder().push(got) } catch {}
    assert.is(frames.length, 0, 'a plain client got protocol frames from a TLS listener')
    await waitFor(() => /TLS handshake failed/.test(sec.err), 5000, 'the TLS failure in the serve log')
    assert.is(sec.exited, null)
    // The pair is still streaming after that.
    fs.writeFileSync(join(L.mnt, 'one', 'after'), 'after the plain client')
    await waitSynced(L, 20_000)
    assert.is(fs.readFileSync(join(L.s.one, 'after'), 'utf8'), 'after the plain client')
  } finally {
    await stopAll(L, pri, sec)
  }
  assert.is(differences(L), null)
}))

test('a primary with a certificate from another CA is refused; nothing replicated', bounded(40_000, async () => {
  const L = layout('tls-rogue', { vols: ['one'] })
  let sec, pri
  try {
    sec = await startSecondary(L, 17261, pki.good.secondary)
    // Its own CA file is the good one (so it would accept the secondary); its certificate is not.
    const rogueCert = [...pki.rogue.primary.slice(0, 4), '--tls-ca', pki.good.primary[5]]
    pri = await startPrimary(L, 17261, { extra: rogueCert })
    fs.writeFileSync(join(L.mnt, 'one', 'f'), 'must not arrive')
    await waitFor(() => /TLS handshake failed/.test(sec.err), 15_000, 'the refusal in the serve log')
    // Both ends say what happened: the certificate, and why it failed.
    assert.match(sec.err, /AUTH_FAILED: the peer's TLS certificate is refused: [A-Z_]+/, sec.err)
    const st = await waitFor(async () => { const s = await status(L.pstate); return s.lastError && s }, 15_000, 'an error in the primary status')
    assert.is.not(st.peerState, 'streaming', JSON.stringify(st))
    await waitFor(async () => /AUTH_FAILED.*TLS certificate/.test((await status(L.pstate)).lastError), 10_000, 'the primary to say its certificate was refused')
    assert.match(pri.err, /AUTH_FAILED/)
    await sleep(1000)
    assert.not.ok(fs.existsSync(join(L.s.one, 'f')))
    const ss = await status(L.sstate)
    assert.is(ss.appliedSeq, 0)
    assert.not.match(sec.err, /authenticated/)
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('a primary without TLS against a TLS secondary is refused', bounded(30_000, async () => {
  const L = layout('tls-plain', { vols: ['one'] })
  let sec, pri
  try {
    sec = await startSecondary(L, 17262, pki.good.secondary)
    pri = await startPrimary(L, 17262)
    fs.writeFileSync(join(L.mnt, 'one', 'f'), 'must not arrive')
    await waitFor(async () => (await status(L.pstate)).lastError, 15_000, 'an error in the primary status')
    await waitFor(() => /TLS handshake failed/.test(sec.err), 10_000, 'the refusal in the serve log')
    assert.not.ok(fs.existsSync(join(L.s.one, 'f')))
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('a secondary with a certificate from another CA is refused by the primary', bounded(30_000, async () => {
  const L = layout('tls-rogue-sec', { vols: ['one'] })
  let sec, pri
  try {
    sec = await startSecondary(L, 17263, [...pki.rogue.secondary.slice(0, 4), '--tls-ca', pki.good.secondary[5]])
    pri = await startPrimary(L, 17263, { extra: pki.good.primary })
    fs.writeFileSync(join(L.mnt, 'one', 'f'), 'must not arrive')
    const st = await waitFor(async () => { const s = await status(L.pstate); return s.lastError && s }, 15_000, 'an error in the primary status')
    assert.match(st.lastError, /certificate|verify|issuer|self.signed|UNABLE/i, st.lastError)
    await sleep(500)
    assert.not.ok(fs.existsSync(join(L.s.one, 'f')))
  } finally {
    await stopAll(L, pri, sec)
  }
}))

test('TLS flags given in part are a usage error', bounded(20_000, async () => {
  const L = layout('tls-usage', { vols: ['one'] })
  const { cli } = await import('../helpers/mount.mjs')
  const r = await cli(['serve', '--listen', '127.0.0.1:17264', '--state', L.sstate, '--volume', `one=${L.s.one}`, ...pki.good.secondary.slice(0, 2)])
  assert.is.not(r.code, 0)
  assert.match(r.err, /TLS needs all of --tls-cert, --tls-key and --tls-ca/)
}))

test.run()
