// Two connected in-memory duplexes with the bits of net.Socket that
// Connection uses; one side ending ends the other (allowHalfOpen false).
// For protocol tests without sockets.
import { Duplex } from 'node:stream'

export function socketPair () {
  const mk = () => {
    const d = new Duplex({
      allowHalfOpen: false,
      read () {},
      write (chunk, _enc, cb) { d.peer.push(Buffer.from(chunk)); cb() },
      final (cb) { d.peer.push(null); cb() }
    })
    d.setNoDelay = () => d
    d.remoteAddress = 'mem'
    d.remotePort = 0
    return d
  }
  const a = mk(); const b = mk()
  a.peer = b; b.peer = a
  return [a, b]
}
