// A TCP proxy the fault campaign controls: it forwards 127.0.0.1:listenPort to
// targetHost:targetPort (the secondary: across the veth into its network namespace,
// scripts/faults/netns.mjs, or on loopback where there is none) and, on command, cuts (FIN)
// or resets (RST) every connection, stalls them (nothing forwarded either way until the stall
// ends), adds a delay to every chunk, or blocks (cuts, then refuses new connections until
// unblocked). This kernel has no netem: delay and loss are the proxy's; bandwidth limits are
// `tc tbf` on the veth (netns.mjs), under the proxy's control of the connections.
// It runs in the campaign's process: that process never touches the FUSE mount itself.
import net from 'node:net'

export class Proxy {
  constructor (listenPort, targetPort, targetHost = '127.0.0.1') {
    this.listenPort = listenPort; this.targetPort = targetPort; this.targetHost = targetHost
    this.pairs = new Set(); this.blocked = false; this.delayMs = 0
    this.stallGate = null; this.accepted = 0
  }

  start () {
    this.server = net.createServer(c => this.accept(c))
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.listenPort, '127.0.0.1', () => resolve())
    })
  }

  accept (c) {
    if (this.blocked) { c.resetAndDestroy(); return }
    this.accepted++
    const s = net.connect(this.targetPort, this.targetHost)
    const pair = { c, s }
    this.pairs.add(pair)
    const end = () => { this.pairs.delete(pair); c.destroy(); s.destroy() }
    c.on('error', end); s.on('error', end); c.on('close', end); s.on('close', end)
    this.pipe(c, s); this.pipe(s, c)
  }

  // In order, each chunk no earlier than its arrival + delay, never during a stall.
  pipe (src, dst) {
    let chain = Promise.resolve()
    src.on('data', chunk => {
      const due = Date.now() + this.delayMs
      chain = chain.then(async () => {
        const wait = due - Date.now()
        if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
        while (this.stallGate) await this.stallGate
        if (!dst.destroyed) dst.write(chunk)
      })
    })
  }

  cut () { for (const { c, s } of this.pairs) { c.end(); s.end(); c.destroy(); s.destroy() } this.pairs.clear() }
  reset () { for (const { c, s } of this.pairs) { c.resetAndDestroy(); s.resetAndDestroy() } this.pairs.clear() }
  stall () { if (!this.stallGate) this.stallGate = new Promise(resolve => { this.unstall = () => { this.stallGate = null; resolve() } }) }
  resume () { this.unstall?.(); this.unstall = null }
  block () { this.blocked = true; this.reset() }
  unblock () { this.blocked = false }
  heal () { this.resume(); this.unblock(); this.delayMs = 0 }

  close () {
    this.heal(); this.reset()
    return new Promise(resolve => this.server ? this.server.close(() => resolve()) : resolve())
  }
}
