// Online verify in a primary daemon: the `verify` command of the control
// socket (`replfs verify` talks to it), one pass at a time, and its last
// result and progress for `status`.
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import type { RestateSource } from '../capture/restate.js'
import type { Replicator } from '../replicate/sender.js'
import { Verifier, type VerifyCapture, type VerifyReport } from '../replicate/verify.js'
import { verifyBlockBytesMax, verifyBlockBytesMin } from '../replicate/messages.js'
import { summaryLine } from '../replicate/verify-compare.js'
import type { ControlCommand } from './control.js'
import cliProgress from 'cli-progress'

export const verifyBlockBytesDefault = 64 * 1024

export interface VerifyRun { blockBytes: number, repair: boolean, rateBytesPerSec: number }

export class VerifyService {
  private running: { v: Verifier, periodic: boolean, done: Promise<unknown> } | null = null
  private last: { at: string, summary: string, clean: boolean, mismatches: number, error: string | null } | null = null
  private periodic: { intervalMs: number, rateBytesPerSec: number, timer: NodeJS.Timeout | null, nextAt: number } | null = null
  private stopping = false

  constructor (private readonly capture: VerifyCapture, private readonly replicator: Replicator | null, private readonly volumes: VolumeSpec[],
    private readonly src: RestateSource, private readonly log: (l: string) => void) {}

  status () {
    const p = this.periodic
    return {
      running: this.running ? { ...this.running.v.progress, periodic: this.running.periodic } : null,
      last: this.last && { ...this.last },
      intervalSec: p ? p.intervalMs / 1000 : null,
      rateBytesPerSec: p ? p.rateBytesPerSec : null,
      nextAt: p && p.timer ? new Date(p.nextAt).toISOString() : null
    }
  }

  /** `mount --verify-interval`: a pass at a bounded rate, `intervalMs`
   *  after the end of the last one (skipped while the peer is not streaming). */
  startPeriodic (intervalMs: number, rateBytesPerSec: number): void {
    this.periodic = { intervalMs, rateBytesPerSec, timer: null, nextAt: 0 }
    this.schedule()
  }

  stop (): void {
    this.stopping = true
    if (this.periodic?.timer) clearTimeout(this.periodic.timer)
    this.running?.v.stop(replError('USAGE', 'the daemon is stopping'))
  }

  private schedule (): void {
    const p = this.periodic
    if (!p || this.stopping) return
    p.nextAt = Date.now() + p.intervalMs
    p.timer = setTimeout(() => {
      p.timer = null
      if (this.running || !this.replicator?.verifyLink()) { this.schedule(); return } // busy or no streaming peer: next time
      this.run({ blockBytes: verifyBlockBytesDefault, repair: false, rateBytesPerSec: p.rateBytesPerSec }, undefined, undefined, true)
        .then(r => { if (!r.clean) this.log('periodic verify: the secondary DIVERGES from this primary; run `replfs verify --repair` to resend what differs') },
          () => {})
        .finally(() => this.schedule())
    }, p.intervalMs)
    p.timer.unref()
  }

  /** One pass; throws (could not run) when there is no streaming peer, a
   *  pass is running, or the link goes away. */
  async run (o: VerifyRun, onEvent: (e: unknown) => void = () => {}, gone: Promise<void> = new Promise(() => {}), periodic = false): Promise<VerifyReport> {
    if (!this.replicator) throw replError('USAGE', 'this mount replicates to no secondary (no --peer): there is nothing to verify against')
    if (this.running?.periodic && !periodic) {
      // An operator's verify goes first; the periodic pass runs again later.
      this.running.v.stop(replError('BUSY', 'stopped for a verify asked by the operator'))
      await this.running.done.catch(() => {})
    }
    if (this.running) throw replError('BUSY', 'a verify is already running on this primary')
    const link = this.replicator.verifyLink()
    if (!link) {
      throw replError('PEER_ERROR', `the secondary is not streaming (peer state ${this.replicator.status().peerState}): verify needs a connected, consistent copy`,
        'wait for `replfs status` to show the peer streaming, with no resync')
    }
    const v = new Verifier(this.capture, this.volumes, this.src, link, { ...o, onMismatch: m => onEvent({ event: 'mismatch', mismatch: m }) })
    this.replicator.verifyListeners.add(v.onAnswer)
    const done = v.run()
    this.running = { v, periodic, done }
    // A periodic pass shows a progress bar when the daemon runs on a terminal.
    let bar: cliProgress.SingleBar | null = null
    const timer = setInterval(() => {
      onEvent({ event: 'progress', progress: v.progress })
      if (!periodic || !process.stderr.isTTY) return
      const p = v.progress
      if (!bar) {
        bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'periodic verify {phase} |{bar}| {percentage}% {mib} MiB, {mismatches} mismatches' }, cliProgress.Presets.shades_classic)
        bar.start(Math.max(1, p.bytesTotal), 0)
      }
      bar.setTotal(Math.max(1, p.bytesTotal, p.bytesDone))
      bar.update(p.bytesDone, { phase: p.phase, mib: (p.bytesDone / (1 << 20)).toFixed(1), mismatches: p.mismatches })
    }, 1000)
    void gone.then(() => v.stop(replError('USAGE', 'the verify was cancelled: its client went away')))
    try {
      const report = await done
      const summary = summaryLine(report)
      this.log(summary)
      this.last = { at: new Date().toISOString(), summary, clean: report.clean, mismatches: report.found.length, error: null }
      return report
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err)
      this.log(`verify could not complete: ${msg}`)
      this.last = { at: new Date().toISOString(), summary: `verify could not complete: ${msg}`, clean: false, mismatches: 0, error: msg }
      throw err
    } finally {
      clearInterval(timer)
      ;(bar as cliProgress.SingleBar | null)?.stop()
      this.replicator.verifyListeners.delete(v.onAnswer)
      this.running = null
    }
  }

  /** The control socket's `verify` command: {blockBytes, repair}. */
  readonly command: ControlCommand = async (args, send, gone) => {
    const blockBytes = args.blockBytes === undefined ? verifyBlockBytesDefault : Number(args.blockBytes)
    if (!Number.isSafeInteger(blockBytes) || blockBytes < verifyBlockBytesMin || blockBytes > verifyBlockBytesMax) {
      throw replError('USAGE', `--block-size must be a whole number of bytes in ${verifyBlockBytesMin}..${verifyBlockBytesMax}, not ${JSON.stringify(args.blockBytes)}`)
    }
    const report = await this.run({ blockBytes, repair: args.repair === true, rateBytesPerSec: 0 }, send, gone)
    send({ event: 'result', report })
  }
}
