// Heartbeats with a dead-peer timeout: a ping every interval; any message
// from the peer counts as life; silence past the timeout drops the
// connection (the primary then reconnects with backoff).
import type { Connection } from './transport.js'
import { replError } from '../core/errors.js'

export const heartbeatMs = 2_000
export const deadPeerMs = 10_000
/** Status calls a link silent past this (a missed heartbeat and a half),
 *  long before the dead-peer timeout drops it: status tells the truth
 *  within a heartbeat. */
export const silentPeerMs = heartbeatMs * 3 / 2

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null
  private last = Date.now()

  constructor (private readonly conn: Connection, private readonly onDead: () => void,
    private readonly everyMs = heartbeatMs, private readonly deadMs = deadPeerMs) {
    conn.on('message', () => { this.last = Date.now() })
  }

  /** Milliseconds since the peer was last heard from. */
  get silentMs (): number { return Date.now() - this.last }

  start (): void {
    this.last = Date.now()
    this.timer = setInterval(() => {
      if (Date.now() - this.last > this.deadMs) {
        this.stop()
        this.onDead()
        this.conn.fail(replError('TIMEOUT', `no message from the peer for ${this.deadMs} ms`))
        return
      }
      this.conn.send({ t: 'ping', ts: Date.now() })
    }, this.everyMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }
}
