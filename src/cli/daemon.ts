// Foreground daemon life: start, print readiness, stop cleanly on SIGINT or
// SIGTERM (flush, unmount, exit 0), one clear line and exit 1 on failure.
import { describe } from '../core/errors.js'
import { nativeCore } from '../native/addon.js'

export type Log = (line: string) => void

/** How a daemon is asked to stop: `drain` (SIGUSR2, what `replfs demote`
 *  sends) also waits, bounded, until the peer has what was written. */
export interface StopHow { drain: boolean }

export async function runDaemon (start: (log: Log) => Promise<(how?: StopHow) => Promise<void>>): Promise<void> {
  const log: Log = line => process.stderr.write(`replfs: ${line}\n`)
  let stop: ((how?: StopHow) => Promise<void>) | null = null
  try {
    // A daemon that replicates reads and receives a buffer per batch: from
    // memory it already has, not pages mapped afresh for each (an async
    // pair's CPU per GiB 13-21% lower, native-notes/performance.md 20).
    // Inside the try: an addon that cannot load is one clear line too.
    nativeCore().keepFreedMemory()
    stop = await start(log)
  } catch (err) {
    process.stderr.write(`replfs: error: ${describe(err)}\n`)
    process.exit(1)
  }
  let stopping = false
  const onSignal = (sig: string) => {
    if (stopping) return
    stopping = true
    log(`${sig}: flushing and unmounting`)
    // Bounded: a wedged unmount must not keep the process forever.
    const guard = setTimeout(() => { log('stop timed out'); process.exit(1) }, 30_000)
    guard.unref()
    stop!({ drain: sig === 'SIGUSR2' }).then(() => { log('stopped'); process.exit(0) }, err => { log(`stop failed: ${describe(err)}`); process.exit(1) })
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGUSR2', () => onSignal('SIGUSR2'))
}
