// The fault campaign's link: the secondary's side of the connection in a network namespace of
// its own, joined to the host by a veth pair, so that what the primary sends crosses a real
// network device that `tc` can shape:
//
//   host: primary -> 127.0.0.1:proxy -> proxy (campaign) -> 10.213.a.b+1 (veth hostIf)
//                                                                 |
//   namespace: serve listening on 10.213.a.b+2:port  <-  (veth nsIf) 10.213.a.b+2
//
// This kernel has no netem: cuts, resets, stalls and delay come from the proxy
// (scripts/faults/proxy.mjs); bandwidth comes from a token bucket (`tc tbf`) on both ends of
// the veth, the host end shaping what the primary sends and the namespace end the acks.
// The secondary joins the namespace with `nsenter --net=/run/netns/NAME` (startSecondary in
// test/helpers/pair.mjs), not `ip netns exec`, which would also give it a private copy of the
// machine's mounts, FUSE mounts included, kept alive after they are unmounted.
//
// Names and addresses. Campaigns by different people run at once on other ports, so the names
// carry the base port and this process's pid (`replfs-faults-PORT-PID`, veth `rfPORTh|nPID`,
// 15 characters at most, the kernel's limit) and the /30 is derived from the base port
// (17500-18199 allowed): port - 17000 numbers the /30s of 10.213.0.0/16, a private range
// unlikely to be in use (none of this machine's routes). The namespace's `lo` is up (a daemon may talk to itself).
//
// Teardown. remove() deletes the host end of the veth (which takes the other end and the
// qdiscs with it, even if a stuck daemon still holds the namespace) and the namespace; it runs
// in the campaign's finally, on exit, and on SIGINT/SIGTERM/SIGHUP (then the signal is raised
// again). A SIGKILLed campaign cannot clean up: the next one on the same port removes the
// namespaces of that port whose pid is gone (only names of this scheme, never another's).
import fs from 'node:fs'
import { execFileSync, spawnSync } from 'node:child_process'

const PREFIX = 'replfs-faults-'
const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 10_000 })
/** Runs a teardown step; a step that fails (already gone) is not an error. */
const quietly = (cmd, args) => { try { run(cmd, args) } catch {} }
const alive = pid => { try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' } }

/** Why the campaign cannot make a namespace here, or null when it can. */
export function unavailable () {
  if (process.env.FAULT_NETNS === '0') return 'FAULT_NETNS=0'
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root'
  for (const [tool, pkg] of [['ip', 'iproute2'], ['tc', 'iproute2'], ['nsenter', 'util-linux']]) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) return `no \`${tool}\` (${pkg}) on PATH`
  }
  return null
}

/** Removes namespaces of this scheme on `port` left by campaigns that were SIGKILLed. */
function removeLeftovers (port) {
  let names = []
  try { names = run('ip', ['netns', 'list']).split('\n').map(l => l.split(' ')[0]) } catch { return }
  for (const name of names) {
    const m = name.match(/^replfs-faults-(\d+)-(\d+)$/)
    if (!m || Number(m[1]) !== port || alive(Number(m[2]))) continue
    quietly('ip', ['link', 'del', `rf${port}h${m[2]}`])
    quietly('ip', ['netns', 'del', name])
  }
}

const live = new Set()
let handlersInstalled = false
function removeOnExit () {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', () => { for (const link of live) link.remove() })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => { for (const link of live) link.remove(); process.kill(process.pid, sig) })
  }
}

export class Link {
  /** Makes the namespace and the veth pair for base port `port`; throws (having removed
   *  what it made) when a step fails. */
  constructor (port) {
    if (!(port >= 17000 && port < 17000 + 16384)) throw new Error(`netns: port ${port} outside 17000-33383`)
    const pid = process.pid
    this.name = `${PREFIX}${port}-${pid}`
    this.hostIf = `rf${port}h${pid}`; this.nsIf = `rf${port}n${pid}`
    const net = (port - 17000) * 4 // the /30's first address, as an offset in 10.213.0.0/16
    const addr = k => `10.213.${(net + k) >> 8}.${(net + k) & 255}`
    this.hostAddr = addr(1); this.nsAddr = addr(2)
    this.throttled = null
    removeLeftovers(port)
    removeOnExit()
    live.add(this)
    try {
      run('ip', ['netns', 'add', this.name])
      run('ip', ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf, 'netns', this.name])
      run('ip', ['addr', 'add', `${this.hostAddr}/30`, 'dev', this.hostIf])
      run('ip', ['link', 'set', this.hostIf, 'up'])
      run('ip', ['-n', this.name, 'addr', 'add', `${this.nsAddr}/30`, 'dev', this.nsIf])
      run('ip', ['-n', this.name, 'link', 'set', this.nsIf, 'up'])
      run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up'])
    } catch (err) {
      this.remove()
      throw new Error(`netns: ${err.message.split('\n')[0]} ${err.stderr ?? ''}`.trim())
    }
  }

  /** Limits the link to `rateKbit` both ways: a token bucket on each end of the veth. The
   *  bucket holds 10 ms of the rate (at least 16 KiB: above the MTU, and above rate/HZ for
   *  any kernel HZ); packets wait at most 300 ms in its queue, then are dropped (TCP
   *  retransmits: a lossy, slow link). */
  throttle (rateKbit) {
    const burst = Math.max(16 * 1024, Math.round(rateKbit * 1000 / 8 / 100))
    const tbf = ['root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', String(burst), 'latency', '300ms']
    this.unthrottle()
    this.throttled = rateKbit
    run('tc', ['qdisc', 'add', 'dev', this.hostIf, ...tbf])
    run('tc', ['-n', this.name, 'qdisc', 'add', 'dev', this.nsIf, ...tbf])
  }

  /** Whether process `pid` runs in this namespace (the daemon, started through nsenter,
   *  which execs: the pid the campaign signals, kill -9 or SIGSTOP, is the daemon's own). */
  holds (pid) {
    try { return fs.readlinkSync(`/proc/${pid}/ns/net`) === `net:[${fs.statSync(`/run/netns/${this.name}`).ino}]` } catch { return false }
  }

  unthrottle () {
    if (this.throttled === null) return
    this.throttled = null
    quietly('tc', ['qdisc', 'del', 'dev', this.hostIf, 'root'])
    quietly('tc', ['-n', this.name, 'qdisc', 'del', 'dev', this.nsIf, 'root'])
  }

  remove () {
    if (!live.has(this)) return
    live.delete(this)
    quietly('ip', ['link', 'del', this.hostIf])
    quietly('ip', ['netns', 'del', this.name])
  }
}

/** The campaign's link on `port`: { link } or, when the namespace cannot be made here,
 *  { link: null, why } (the campaign then runs the secondary on loopback, without throttle). */
export function openLink (port) {
  const why = unavailable()
  if (why) return { link: null, why }
  try { return { link: new Link(port) } } catch (err) { return { link: null, why: err.message } }
}
