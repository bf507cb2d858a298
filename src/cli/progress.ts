// Resync progress for the operator: a progress bar (cli-progress) when
// stderr is a terminal, else a log line every few seconds. The figures are
// the replicator's status (bytes done and total, rate, time left).
import cliProgress from 'cli-progress'
import type { Replicator } from '../replicate/sender.js'

const logEveryMs = 5000

function mib (n: number): string { return (n / (1 << 20)).toFixed(1) }

export function reportResync (r: Replicator, log: (l: string) => void): () => void {
  let bar: cliProgress.SingleBar | null = null
  let lastLog = 0
  const timer = setInterval(() => {
    const p = r.status().resync
    if (!p) {
      if (bar) { bar.stop(); bar = null }
      return
    }
    if (process.stderr.isTTY) {
      if (!bar) {
        bar = new cliProgress.SingleBar({
          stream: process.stderr,
          format: 'resync {kind} |{bar}| {percentage}% {done}/{total} MiB {rate} MiB/s ETA {eta_s}s'
        }, cliProgress.Presets.shades_classic)
        bar.start(Math.max(1, p.bytesTotal), 0)
      }
      bar.setTotal(Math.max(1, p.bytesTotal))
      bar.update(p.bytesDone, { kind: p.kind, done: mib(p.bytesDone), total: mib(p.bytesTotal), rate: mib(p.rateBytesPerSec) })
    } else if (Date.now() - lastLog >= logEveryMs) {
      lastLog = Date.now()
      const pct = p.bytesTotal > 0 ? (100 * p.bytesDone / p.bytesTotal).toFixed(1) : '0.0'
      log(`resync ${p.kind} ${p.phase}: ${mib(p.bytesDone)} of ${mib(p.bytesTotal)} MiB (${pct}%), ${mib(p.rateBytesPerSec)} MiB/s, ${p.etaSec ?? '?'} s left, ${mib(p.bytesSent)} MiB sent`)
    }
  }, 1000)
  timer.unref()
  return () => { clearInterval(timer); bar?.stop() }
}
