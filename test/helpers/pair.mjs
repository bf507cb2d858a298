// Test helpers for a replicating pair on loopback: a secondary (`replfs
// serve`) and a primary mount (`replfs mount --peer`), each a child process
// (never served from the test process). Ports: tests use 17100-17199 only,
// a distinct one per test.
import fs from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { daemon, mount, unstick, tempDir, sh } from './mount.mjs'
import { snapshot } from './tree.mjs'
import { queryControl } from '../../dist/cli/control.js'

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
/** `promise`, or `value` after `ms` (the timer does not outlive the race). */
export function within (promise, ms, value) {
  let t
  return Promise.race([promise, new Promise(resolve => { t = setTimeout(() => resolve(value), ms) })]).finally(() => clearTimeout(t))
}

export const hashFile = f => createHash('sha256').update(fs.readFileSync(f)).digest('hex')

/** The daemon's `status --json` (same control socket the CLI asks). */
export function status (state) {
  return queryControl(state, 5000)
}

/** Polls `fn` until it returns a truthy value; throws with `what` (and the
 *  last value seen) after `ms`. */
export async function waitFor (fn, ms, what, every = 100) {
  const until = Date.now() + ms
  let last
  for (;;) {
    try { last = await fn(); if (last) return last } catch (err) { last = err }
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
    await sleep(every)
  }
}

/**
 * A pair layout in a fresh temp dir:
 *   vols:   { name: initial-content-fn | null } directory volumes
 *   image:  { name, size } an image volume (optional)
 * Returns paths: base, mnt, pstate, sstate, secretFile (shared, 0600), p[name], s[name] (backing dirs /
 * image files of the primary and the secondary).
 */
export function layout (prefix, { vols = ['one', 'two'], image = null } = {}) {
  const base = tempDir(prefix)
  const L = { base, mnt: join(base, 'mnt'), pstate: join(base, 'pstate'), sstate: join(base, 'sstate'), secretFile: join(base, 'secret'), p: {}, s: {}, vols, image }
  fs.mkdirSync(L.mnt)
  // Both sides share one secret: one is required, loopback included.
  fs.writeFileSync(L.secretFile, `pair-test-secret-${Math.random().toString(36).slice(2)}-0123456789\n`, { mode: 0o600 })
  fs.chmodSync(L.secretFile, 0o600)
  for (const v of vols) {
    L.p[v] = join(base, 'p-' + v); L.s[v] = join(base, 's-' + v)
    fs.mkdirSync(L.p[v]); fs.mkdirSync(L.s[v])
  }
  if (image) { L.p[image.name] = join(base, 'p-' + image.name + '.img'); L.s[image.name] = join(base, 's-' + image.name + '.img') }
  return L
}

/** Puts a side's state directory (`p`: L.pstate, `s`: L.sstate) on a tmpfs
 *  of `mib` MiB of its own, to be filled up (scripts/faults/places.mjs
 *  fillFilesystem). Returns the filesystem's root; `unmountState` it in a
 *  finally. */
export function smallStateFs (L, side, mib) {
  const root = join(L.base, 'statefs')
  fs.mkdirSync(root)
  sh(`mount -t tmpfs -o size=${mib}m,mode=0700 replfs-test-statefs ${root}`)
  L[side === 'p' ? 'pstate' : 'sstate'] = join(root, 'state')
  return root
}

/** Lazy unmount (a daemon killed late may still hold a file there). */
export function unmountState (root) {
  try { sh(`umount -l ${root}`) } catch {}
}

/** --secret-file L.secretFile unless `extra` gives its own. */
const secretArgs = (L, extra) => extra.includes('--secret-file') ? [] : ['--secret-file', L.secretFile]

const volArgs = (L, side) => [
  ...L.vols.flatMap(v => ['--volume', `${v}=${L[side][v]}`]),
  ...(L.image ? ['--image', `${L.image.name}=${L[side][L.image.name]}:${L.image.size}`] : [])
]

/** Starts the secondary; resolves once it printed "listening". `host`: the address it
 *  listens on; `netns`: the named network namespace (`ip netns add`) it runs in. It joins
 *  that namespace with `nsenter --net`, not `ip netns exec`: the latter also gives the daemon
 *  a mount namespace of its own, a copy of every mount of the moment, FUSE mounts included
 *  (this pair's and other tests'), which the copy keeps alive after they are unmounted.
 *  nsenter execs: the daemon's pid is the one started, and signals reach it. */
export function startSecondary (L, port, extra = [], { host = '127.0.0.1', netns = null } = {}) {
  const wrap = netns ? ['nsenter', `--net=/run/netns/${netns}`] : []
  return daemon(['serve', '--listen', `${host}:${port}`, '--state', L.sstate, '--group', 'g', ...volArgs(L, 's'), ...secretArgs(L, extra), ...extra], { readyWord: 'listening', wrap })
}

/** Starts the primary mount replicating to `port`; resolves once "ready". */
export function startPrimary (L, port, { mode = 'async', extra = [], env } = {}) {
  return mount([L.mnt, '--group', 'g', '--state', L.pstate, ...volArgs(L, 'p'), '--peer', `127.0.0.1:${port}`, '--mode', mode, ...secretArgs(L, extra), ...extra], { env })
}

/** Waits until the primary has nothing unacknowledged, streams and has no
 *  journal error pending (changes its journal failed to take are not on the
 *  copy until re-journalled), and the secondary is consistent at the
 *  primary's last sequence. */
/** How many resyncs (full or partial) a primary's log tells of. */
export const resyncsIn = log => (log.match(/resync of the secondary starts/g) ?? []).length

export async function waitSynced (L, ms = 60_000) {
  return waitFor(async () => {
    const p = await status(L.pstate)
    if (p.lagRecords !== 0 || p.peerState !== 'streaming' || p.resync || p.journalError) return false
    const s = await status(L.sstate)
    if (!s.consistent || s.appliedSeq !== p.lastSeq) return false
    return { p, s }
  }, ms, `the pair in sync (${L.pstate})`)
}

/** Splits a printed shell command line (single quotes only). */
export function words (line) {
  const out = []
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g
  let m
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2])
  return out
}

/** Waits until the secondary has applied what its journal held when called:
 *  a sync-mode write that returned is in that journal (acknowledged once
 *  stored), on the copy once this resolves. */
export async function waitAppliedStored (L, ms = 20_000) {
  const stored = (await status(L.sstate)).storedSeq
  return waitFor(async () => (await status(L.sstate)).appliedSeq >= stored, ms, `the secondary to apply what it stored (through ${stored})`)
}

/** Starts secondary then primary and waits for the initial sync. */
export async function startPair (L, port, { mode = 'async', pextra = [], sextra = [], ms = 60_000, penv } = {}) {
  const sec = await startSecondary(L, port, sextra)
  let pri
  try {
    pri = await startPrimary(L, port, { mode, extra: pextra, env: penv })
    await waitSynced(L, ms)
  } catch (err) {
    await stopAll(L, pri, sec)
    throw err
  }
  return { sec, pri }
}

/** Stops the primary (SIGTERM, unmount) and the secondary; never throws. */
export async function stopAll (L, pri, sec) {
  try { await pri?.stop() } catch {}
  unstick(L.mnt)
  try { await sec?.stop() } catch {}
  if (process.env.PAIR_DEBUG) console.log(`--- primary (exit ${JSON.stringify(pri?.exited)}) log\n${pri?.err}\n--- secondary log\n${sec?.err}`)
}

/** Asserts the replica equals the primary's backing store: trees and image
 *  bytes. Returns a message on difference, null when identical. */
export function differences (L) {
  const out = []
  for (const v of L.vols) {
    const a = snapshot(L.p[v]); const b = snapshot(L.s[v])
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    for (const k of [...keys].sort()) if (a[k] !== b[k]) out.push(`${v}/${k}: primary ${a[k] ?? '(none)'} / secondary ${b[k] ?? '(none)'}`)
  }
  if (L.image && hashFile(L.p[L.image.name]) !== hashFile(L.s[L.image.name])) out.push(`image ${L.image.name} differs`)
  return out.length ? out.slice(0, 20).join('\n') : null
}
