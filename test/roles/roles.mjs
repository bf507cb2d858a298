// Helpers for role swaps: either side's volumes serve as primary (a mount)
// or secondary (`serve`), each from its own state directory, so a test can
// move the primary from one side to the other and back. Ports: 17650-17699.
import fs from 'node:fs'
import { join } from 'node:path'
import { daemon, mount, unstick } from '../helpers/mount.mjs'
import { status, waitFor } from '../helpers/pair.mjs'

export const sides = L => ({
  a: { side: 'p', state: L.pstate, mnt: L.mnt },
  b: { side: 's', state: L.sstate, mnt: (() => { const m = join(L.base, 'mnt-b'); fs.mkdirSync(m, { recursive: true }); return m })() }
})

const volArgs = (L, side) => [
  ...L.vols.flatMap(v => ['--volume', `${v}=${L[side][v]}`]),
  ...(L.image ? ['--image', `${L.image.name}=${L[side][L.image.name]}:${L.image.size}`] : [])
]

export function serveOn (L, x, port) {
  return daemon(['serve', '--listen', `127.0.0.1:${port}`, '--state', x.state, '--group', 'g', ...volArgs(L, x.side), '--secret-file', L.secretFile], { readyWord: 'listening' })
}

export function mountOn (L, x, port) {
  return mount([x.mnt, '--group', 'g', '--state', x.state, ...volArgs(L, x.side), '--peer', `127.0.0.1:${port}`, '--secret-file', L.secretFile])
}

/** The primary of `pstate` streams with nothing unacknowledged, and the
 *  secondary of `sstate` is consistent at its last sequence. */
export function waitPair (pstate, sstate, ms = 60_000) {
  return waitFor(async () => {
    const p = await status(pstate)
    if (p.role !== 'primary' || p.lagRecords !== 0 || p.peerState !== 'streaming' || p.resync) return false
    const s = await status(sstate)
    if (s.role !== 'secondary' || !s.consistent || s.appliedSeq !== p.lastSeq) return false
    return { p, s }
  }, ms, `${pstate} streaming to ${sstate} in sync`)
}

export async function stopQuietly (daemons, mnts) {
  for (const d of daemons) { try { await d?.stop() } catch {} }
  for (const m of mnts) unstick(m)
}
