// Two "hosts" on one machine: two network namespaces joined by a veth pair,
// made and removed by the test. Names: namespaces rfs-t-<hex>-p / -s, veth
// ends rfs<hex>p / rfs<hex>s (15-char limit), addresses 10.213.<n>.1 (primary
// side) and .2 (secondary side).
//
// Where mounts land: `ip netns exec NS cmd` also unshares the mount namespace
// (to remount /sys), so a FUSE mount made by a process started that way is
// visible only inside that process's own mount namespace, not in the host's
// nor in another `ip netns exec` of the same NS (checked here: it shows in
// /proc/PID/mountinfo only). So the secondary runs under `ip netns exec`,
// and the primary under `nsenter --net=/run/netns/NS`, which enters the
// network namespace only: its mount is in the host's mount namespace and
// the test writes through it directly.
import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { CLI } from '../helpers/mount.mjs'

const run = (args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })

/** Removes namespaces (and host-side veth ends) left by a crashed run of
 *  these tests: only those with no process left inside. */
export function removeStale () {
  let list = ''
  try { list = run(['ip', 'netns', 'list']) } catch { return }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0]
    if (!name.startsWith('rfs-t-')) continue
    let pids = ''
    try { pids = run(['ip', 'netns', 'pids', name]).trim() } catch {}
    if (pids) continue // a live run owns it
    try { run(['ip', 'netns', 'del', name]) } catch {}
  }
  let links = ''
  try { links = run(['ip', '-o', 'link', 'show']) } catch { return }
  for (const m of links.matchAll(/^\d+: (rfs[0-9a-f]{4}[ps])[@:]/gm)) {
    try { run(['ip', 'link', 'del', m[1]]) } catch {}
  }
}

/** Creates the two namespaces and the link; throws with the reason (never
 *  skips) when the machine cannot. */
export function createHosts () {
  removeStale()
  const hex = randomBytes(2).toString('hex')
  const n = 1 + (randomBytes(1)[0] % 254)
  const H = {
    p: `rfs-t-${hex}-p`, s: `rfs-t-${hex}-s`,
    vp: `rfs${hex}p`, vs: `rfs${hex}s`,
    ipP: `10.213.${n}.1`, ipS: `10.213.${n}.2`
  }
  const steps = [
    ['ip', 'netns', 'add', H.p],
    ['ip', 'netns', 'add', H.s],
    ['ip', 'link', 'add', H.vp, 'type', 'veth', 'peer', 'name', H.vs],
    ['ip', 'link', 'set', H.vp, 'netns', H.p],
    ['ip', 'link', 'set', H.vs, 'netns', H.s],
    ['ip', '-n', H.p, 'addr', 'add', `${H.ipP}/24`, 'dev', H.vp],
    ['ip', '-n', H.s, 'addr', 'add', `${H.ipS}/24`, 'dev', H.vs],
    ['ip', '-n', H.p, 'link', 'set', 'lo', 'up'],
    ['ip', '-n', H.s, 'link', 'set', 'lo', 'up'],
    ['ip', '-n', H.p, 'link', 'set', H.vp, 'up'],
    ['ip', '-n', H.s, 'link', 'set', H.vs, 'up']
  ]
  for (const st of steps) {
    try {
      run(st)
    } catch (err) {
      removeHosts(H)
      throw new Error(`cannot create network namespaces here: \`${st.join(' ')}\` failed: ${String(err.stderr || err.message).trim()}`)
    }
  }
  return H
}

export function removeHosts (H) {
  for (const ns of [H.p, H.s]) { try { run(['ip', 'netns', 'del', ns]) } catch {} }
  for (const l of [H.vp, H.vs]) { try { run(['ip', 'link', 'del', l]) } catch {} }
}

export function linkDown (H) { run(['ip', '-n', H.p, 'link', 'set', H.vp, 'down']) }
export function linkUp (H) { run(['ip', '-n', H.p, 'link', 'set', H.vp, 'up']) }

/** Starts `node dist/cli.js ARGS` behind `prefix` (a namespace entry
 *  command); resolves once stdout shows `readyWord`. Same shape as the
 *  helpers' daemon(): proc, out, err, exited, stop(). */
export function nsDaemon (prefix, args, { readyWord, timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(prefix[0], [...prefix.slice(1), process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const d = { proc: p, out: '', err: '', exited: null }
    const exited = new Promise(res => p.on('exit', (code, signal) => { d.exited = { code, signal }; res(d.exited) }))
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${args[0]} not ${readyWord} within ${timeoutMs} ms: ${d.err}`)) }, timeoutMs)
    p.stdout.on('data', c => { d.out += c; if (d.out.includes(readyWord)) { clearTimeout(t); resolve(d) } })
    p.stderr.on('data', c => { d.err += c })
    p.on('exit', () => { clearTimeout(t); if (!d.out.includes(readyWord)) reject(new Error(`${args[0]} exited before ${readyWord}: ${d.err}`)) })
    d.stop = async (ms = 20_000) => {
      if (d.exited) return d.exited
      p.kill('SIGTERM')
      let timer
      const r = await Promise.race([exited, new Promise(res => { timer = setTimeout(() => res(null), ms) })])
      clearTimeout(timer)
      if (r === null) { p.kill('SIGKILL'); return await exited }
      return r
    }
  })
}
