// Online verify in a primary daemon: the `verify` command of the control
// socket (`replfs verify` talks to it), one pass at a time, and its last
// result and progress for `status`.
import type { VolumeSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import type { RestateSource } from '../capture/restate.js'
import type { Replicator } from '../replicate/sender.js'
import { Verifier, type VerifyCapture, type VerifyProgress, type VerifyReport } from '../replicate/verify.js'
import { verifyBlockBytesMax, verifyBlockBytesMin } from '../replicate/messages.js'
import { summaryLine } from '../replicate/verify-compare.js'
import type { ControlCommand } from './control.js'

export const verifyBlockBytesDefault = 64 * 1024

export interface VerifyRun { blockBytes: number, repair: boolean, rateBytesPerSec: number }

export class VerifyService {
  private running: Verifier | null = null
  private last: { at: string, summary: string, clean: boolean, mismatches: number, error: string | null } | null = null

  constructor (private readonly capture: VerifyCapture, private readonly replicator: Replicator | null, private readonly volumes: VolumeSpec[],
    private readonly src: RestateSource, private readonly log: (l: string) => void) {}

  status (): { running: VerifyProgress | null, last: VerifyService['last'] } {
    return { running: this.running ? { ...this.running.progress } : null, last: this.last && { ...this.last } }
  }

  /** One pass; throws (could not run) when there is no streaming peer, a
   *  pass is running, or the link goes away. */
  async run (o: VerifyRun, onEvent: (e: unknown) => void = () => {}, gone: Promise<void> = new Promise(() => {})): Promise<VerifyReport> {
    if (!this.replicator) throw replError('USAGE', 'this mount replicates to no secondary (no --peer): there is nothing to verify against')
    if (this.running) throw replError('BUSY', 'a verify is already running on this primary')
    const link = this.replicator.verifyLink()
    if (!link) {
      throw replError('PEER_ERROR', `the secondary is not streaming (peer state ${this.replicator.status().peerState}): verify needs a connected, consistent copy`,
        'wait for `replfs status` to show the peer streaming, with no resync')
    }
    const v = new Verifier(this.capture, this.volumes, this.src, link, { ...o, onMismatch: m => onEvent({ event: 'mismatch', mismatch: m }) })
    this.running = v
    this.replicator.verifyListeners.add(v.onAnswer)
    const timer = setInterval(() => onEvent({ event: 'progress', progress: v.progress }), 1000)
    void gone.then(() => v.stop(replError('USAGE', 'the verify was cancelled: its client went away')))
    try {
      const report = await v.run()
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
