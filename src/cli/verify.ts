// `replfs verify`: asks the running primary (control socket) to compare
// every volume with the secondary by block checksums, while writes go on;
// prints each mismatch and one summary line. Exit status: 0 clean (with
// --repair: clean after the repair), 1 divergent, 2 could not run.
import type { Command } from 'commander'
import { resolve } from 'node:path'
import cliProgress from 'cli-progress'
import { commandControl } from './control.js'
import { describe, replError } from '../core/errors.js'
import { parseSize } from './group-spec.js'
import { verifyBlockBytesDefault } from './verify-service.js'
import { describeMismatch, summaryLine, type Mismatch } from '../replicate/verify-compare.js'
import type { VerifyProgress, VerifyReport } from '../replicate/verify.js'

interface VerifyFlags { state: string, blockSize?: string, json?: boolean, repair?: boolean }

export function registerVerify (program: Command): void {
  program.command('verify')
    .description('compare every volume with the secondary by block checksums while writes continue (on the primary)')
    .requiredOption('--state <dir>', 'state directory of the running primary mount')
    .option('--block-size <size>', 'bytes per checksum (a mismatch is reported to this granularity)', String(verifyBlockBytesDefault))
    .option('--json', 'machine-readable output: the whole report')
    .option('--repair', 'resend exactly the mismatched ranges and entries through the journal, then verify them again')
    .addHelpText('after', `
Each block is compared at one sequence on both sides (the primary reads it
under its group lock, the secondary exactly when it has applied that
sequence), so writes during the pass never show as false mismatches.
Compared: file data, missing and extra entries, type, mode, owner, size,
symlink targets, xattrs, hard-link structure (not times).

Exit status: 0 clean (with --repair: identical after the repair), 1 divergent,
2 could not run (no daemon, no streaming secondary, connection lost).`)
    .action(async (flags: VerifyFlags) => {
      const state = resolve(flags.state)
      let bar: cliProgress.SingleBar | null = null
      try {
        const blockBytes = parseBlockSize(flags.blockSize ?? String(verifyBlockBytesDefault))
        let report: VerifyReport | null = null
        await commandControl(state, { cmd: 'verify', blockBytes, repair: flags.repair === true }, e => {
          if (e.event === 'result') report = e.report as VerifyReport
          else if (e.event === 'progress' && process.stderr.isTTY && !flags.json) {
            const p = e.progress as VerifyProgress
            if (!bar) {
              bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'verify {phase} |{bar}| {percentage}% {mib} MiB, {mismatches} mismatches' }, cliProgress.Presets.shades_classic)
              bar.start(Math.max(1, p.bytesTotal), 0)
            }
            bar.setTotal(Math.max(1, p.bytesTotal, p.bytesDone))
            bar.update(p.bytesDone, { phase: p.phase, mib: (p.bytesDone / (1 << 20)).toFixed(1), mismatches: p.mismatches })
          }
        }).catch(err => {
          if (/no command "verify"/.test(String((err as Error).message))) {
            throw replError('USAGE', `the daemon of ${state} is not a primary: run verify with the primary's state directory`)
          }
          throw err
        })
        ;(bar as cliProgress.SingleBar | null)?.stop()
        if (!report) throw replError('PEER_ERROR', 'the daemon ended the verify without a result')
        const r = report as VerifyReport
        if (flags.json) console.log(JSON.stringify(r, null, 2))
        else console.log(humanReport(r))
        process.exitCode = r.clean ? 0 : 1
      } catch (err) {
        ;(bar as cliProgress.SingleBar | null)?.stop()
        const msg = describe(err)
        if (flags.json) console.log(JSON.stringify({ error: msg }, null, 2))
        process.stderr.write(`replfs: verify could not run: ${msg}\n`)
        process.exitCode = 2
      }
    })
}

function parseBlockSize (s: string): number {
  if (/^\d+$/.test(s.trim())) return Number(s) // any byte count (the daemon checks the bounds)
  return parseSize(s)
}

function humanReport (r: VerifyReport): string {
  const lines: string[] = []
  const list = (ms: Mismatch[]) => { for (const m of ms) lines.push(`  ${describeMismatch(m)}`) }
  if (r.found.length > 0) {
    lines.push(`mismatches (${r.found.length}):`)
    list(r.found)
  }
  if (r.repaired) {
    if (r.remaining.length > 0) {
      lines.push(`still differing after the repair (${r.remaining.length}):`)
      list(r.remaining)
    } else lines.push('repaired: every mismatch was resent through the journal and verified again')
  }
  for (const s of r.skipped ?? []) lines.push(`not compared: ${s}`)
  lines.push(summaryLine(r))
  return lines.join('\n')
}
