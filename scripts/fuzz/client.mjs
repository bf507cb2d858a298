// The fuzzer's TCP client: writes any bytes, decodes what `serve` answers, and wakes its
// waiters on each arrival (test/pair-faults/env.mjs's raw client polls every 100 ms, which
// would spend most of a fuzz run waiting).
import net from 'node:net'
import { FrameDecoder, encodeFrame } from '../../dist/journal/frame.js'
import { encodeValue } from '../../dist/journal/codec.js'
import { decodeMessage } from '../../dist/replicate/messages.js'
import { frameBytesMax } from '../../dist/core/limits.js'

/** Connects to 127.0.0.1:port. `onSend` counts what goes out. */
export function connectClient (port, onSend) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port })
    const decoder = new FrameDecoder(frameBytesMax)
    const c = { socket: s, msgs: [], closed: false, lastActivity: Date.now() }
    const waiters = new Set()
    const wake = () => { for (const w of [...waiters]) w() }
    s.on('data', chunk => {
      c.lastActivity = Date.now()
      try {
        for (const p of decoder.push(chunk)) {
          try { c.msgs.push(decodeMessage(p)) } catch { c.msgs.push({ t: 'undecodable' }) }
        }
      } catch { c.msgs.push({ t: 'undecodable' }) }
      wake()
    })
    s.on('error', () => {}) // a reset after serve's error message is expected
    s.on('close', () => { c.closed = true; wake() })
    c.send = (bytes) => {
      onSend()
      c.lastActivity = Date.now()
      if (!c.closed && !s.destroyed) s.write(bytes)
    }
    c.sendMsg = (m) => c.send(encodeFrame(encodeValue(m)))
    /** The first message matching `pred`, or null once closed or after `ms`. */
    c.next = (pred, ms) => new Promise(resolve => {
      let t = null
      const done = (v) => { clearTimeout(t); waiters.delete(check); resolve(v) }
      const check = () => { const m = c.msgs.find(pred); if (m) done(m); else if (c.closed) done(null) }
      t = setTimeout(() => done(null), ms)
      waiters.add(check)
      check()
    })
    /** Resolves once closed, or quiet (nothing sent or received) for `quietMs`, or after `maxMs`. */
    c.settle = (quietMs, maxMs) => new Promise(resolve => {
      const until = Date.now() + maxMs
      const tick = () => {
        if (c.closed || Date.now() - c.lastActivity >= quietMs || Date.now() >= until) return resolve()
        setTimeout(tick, 15)
      }
      tick()
    })
    c.error = () => c.msgs.find(m => m.t === 'error') ?? null
    c.destroy = () => s.destroy()
    s.once('connect', () => resolve(c))
    s.once('error', reject)
  })
}
