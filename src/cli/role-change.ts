// What promote, demote and resolve share: a role changes on a state
// directory no daemon holds. A daemon still running on it is stopped first
// through its own clean stop (the signal `replfs` daemons take: unmount and
// flush), never killed; the change is then made offline, file by file,
// each one written whole.
import { alive, lockHolder } from '../journal/lock.js'
import { replError } from '../core/errors.js'
import type { GroupSpec } from '../core/config.js'
import { readGroupFile } from './group-spec.js'
import { queryControl } from './control.js'

export type Log = (line: string) => void

/** The running daemon's status, or null when none runs on `state`. */
export async function runningStatus (state: string): Promise<{ [k: string]: unknown } | null> {
  if (await lockHolder(state) === null) return null
  return await queryControl(state, 5000).catch(() => null) as { [k: string]: unknown } | null
}

/** Stops the daemon holding `state` (SIGTERM; SIGUSR2 also drains to the
 *  secondary) and waits until it is gone. */
export async function stopDaemon (state: string, signal: 'SIGTERM' | 'SIGUSR2', log: Log): Promise<boolean> {
  const pid = await lockHolder(state)
  if (pid === null) return false
  log(`stopping the daemon of ${state} (process ${pid}, ${signal}: it unmounts and flushes)`)
  process.kill(pid, signal)
  const until = Date.now() + 45_000
  while (alive(pid)) {
    if (Date.now() > until) throw replError('TIMEOUT', `the daemon of ${state} (process ${pid}) did not stop within 45 s`, 'stop it yourself, then run this again')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return true
}

export async function groupOf (state: string): Promise<GroupSpec> {
  const spec = await readGroupFile(state)
  if (!spec) throw replError('USAGE', `${state} holds no group.json: not a replfs state directory`)
  return spec
}

/** Volume flags of a group, as `mount` and `serve` take them. */
export function volumeFlags (spec: GroupSpec): string {
  return spec.volumes.map(v => v.kind === 'dir' ? `--volume ${v.name}=${v.path}` : `--image ${v.name}=${v.path}`).join(' ')
}
