// `replfs pair switchover | failover | failback`: the role verbs of a pair
// set up with `pair init` / `pair join`, one command per host and step.
// Each changes this host's role (`promote` / `demote`, roles.ts), then
// runs this host's daemon in the foreground with the flags the pair
// recorded (pair-settings.ts), and says what to run on the other host.
//
//   switchover   on the primary host: demote (drained), then serve;
//                then on the secondary host: promote, then mount
//   failover     on the secondary host when the primary is lost:
//                promote (--force while it still counts it connected), mount
//   failback     on the old primary host once it is back: demote (its
//                unshipped writes are rolled back from the new primary's
//                data and saved, replicate/restated.ts), then serve
import type { Command } from 'commander'
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, isReplError, replError } from '../core/errors.js'
import { stateRole } from './state-role.js'
import { demote, promote } from './roles.js'
import { loadPair, mountArgs, peerHost, serveArgs, shell, type PairSettings } from './pair-settings.js'

const cli = fileURLToPath(new URL('../cli.js', import.meta.url))

interface RoleFlags { state: string, force?: boolean, start: boolean, print?: boolean }

type Step = 'promote' | 'demote'

export function registerPairRoles (pair: Command): void {
  const common = (c: Command) => c
    .requiredOption('--state <dir>', 'this host\'s state directory (set up by `pair init` or `pair join`)')
    .option('--no-start', 'change the role only, and print the daemon command instead of running it (e.g. to start it from systemd)')
    .option('--print', 'only print the commands this runs on this host, in order')
  common(pair.command('switchover')
    .description('move the primary to the other host: run it on the primary host (demote, then serve), then on the secondary host (promote, then mount)'))
    .addHelpText('after', `
On the primary host it unmounts (writes stop), waits for the secondary to have
everything, and serves the other host's stream. Then run the same command on
the other host: it becomes the primary and mounts. Nothing is copied again.`)
    .action(async (f: RoleFlags) => run(f, async state => (await stateRole(state)) === 'primary' ? 'demote' : 'promote'))
  common(pair.command('failover')
    .description('on the secondary host, when the primary host is lost: promote, then mount'))
    .option('--force', 'promote although this host still counts the primary as connected (a silent link): only when it is really gone')
    .addHelpText('after', `
When the old primary's host is back, run \`replfs pair failback\` there: its
writes this host never got are rolled back from this host's data and saved
there, and only what differs is sent.`)
    .action(async (f: RoleFlags) => run(f, async () => 'promote'))
  common(pair.command('failback')
    .description('on the old primary host, after a failover: demote (its unshipped writes are rolled back from the new primary and saved), then serve'))
    .addHelpText('after', `
Its writes the new primary never got (in flight when it stopped) are saved in
STATE/discarded-TIME/ and reported in its log, then taken back from the new
primary's data; only differing ranges move. Writes it made while it knew it
was alone stay a split brain (\`replfs diverged\`, \`replfs resolve\`). To make
it the primary again afterwards: \`replfs pair switchover\` on the other host,
then here.`)
    .action(async (f: RoleFlags) => run(f, async () => 'demote'))
}

async function run (f: RoleFlags, which: (state: string) => Promise<Step>): Promise<void> {
  try {
    const state = resolve(f.state)
    const s = loadPair(state)
    const step = await which(state)
    const role = await stateRole(state)
    const want = step === 'promote' ? 'secondary' : 'primary'
    if (role !== want) throw replError('USAGE', `${state} is ${role ? `a ${role}'s` : 'not a'} state directory: this step (${step}) is for a ${want}`)
    const daemon = step === 'promote' ? mountArgs(state, s) : serveArgs(state, s)
    const change = ['replfs', step, '--state', state, ...(f.force && step === 'promote' ? ['--force'] : [])]
    if (f.print) {
      console.log(shell(change))
      console.log(shell(['replfs', ...daemon]))
      return
    }
    if (step === 'promote') {
      await promote(state, f.force === true, false).catch(err => {
        if (!isReplError(err, 'BUSY')) throw err
        throw replError('BUSY', err.message,
          `run \`replfs pair switchover --state ${s.peer.state ?? 'DIR'}\` on ${peerHost(s)} first (it demotes it and serves); give --force to \`pair failover\` only when it is really gone`)
      })
    } else await demote(state, false)
    console.log(next(step, state, s))
    if (!f.start) {
      console.log(`start this host's daemon:\n  ${shell(['replfs', ...daemon])}`)
      return
    }
    await foreground(daemon)
  } catch (err) {
    process.stderr.write(`replfs: error: ${describe(err)}\n`)
    process.exitCode = 1
  }
}

/** What the operator does next on the other host. */
function next (step: Step, state: string, s: PairSettings): string {
  const there = peerHost(s)
  const peerState = s.peer.state ?? state
  if (step === 'demote') {
    return `replfs: this host serves as the secondary. If the other host is not the primary yet, run there (${there}):\n  replfs pair switchover --state ${peerState}`
  }
  return `replfs: this host is the primary. When ${there} is back after a failover, run there:\n  replfs pair failback --state ${peerState}\n` +
    `To move the primary back later: \`replfs pair switchover --state ${state}\` here, then \`replfs pair switchover --state ${peerState}\` on ${there}.`
}

/** Runs `replfs ARGS` in the foreground: its output is this command's,
 *  SIGINT/SIGTERM go to it, its exit status is this command's. */
async function foreground (args: string[]): Promise<void> {
  process.stderr.write(`replfs: starting: ${shell(['replfs', ...args])}\n`)
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig))
  await new Promise<void>(res => child.on('exit', code => { process.exitCode = code ?? 1; res() }))
}
