// One process per state directory: a pid file created exclusively. A lock
// left by a dead process (kill -9) is taken over; a live one is refused.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { replError } from '../core/errors.js'

export interface StateLock { release (): Promise<void> }

export async function lockStateDir (dir: string): Promise<StateLock> {
  const path = join(dir, 'lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fsp.writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o644 })
      return { release: async () => { await fsp.unlink(path).catch(() => {}) } }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number((await fsp.readFile(path, 'utf8').catch(() => '')).trim())
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        throw replError('JOURNAL_LOCKED', `state directory ${dir} is in use by process ${pid}`, 'stop that replfs first')
      }
      await fsp.unlink(path).catch(() => {})
    }
  }
  throw replError('JOURNAL_LOCKED', `cannot lock state directory ${dir}`)
}

/** Refuses, without writing anything, a state directory a live process
 *  holds: checked before a start writes its files (group.json, role,
 *  secret), so a refused start leaves a running daemon's files alone. */
export async function checkUnlocked (dir: string): Promise<void> {
  const pid = Number((await fsp.readFile(join(dir, 'lock'), 'utf8').catch(() => '')).trim())
  if (pid > 0 && pid !== process.pid && alive(pid)) {
    throw replError('JOURNAL_LOCKED', `state directory ${dir} is in use by process ${pid}`, 'stop that replfs first')
  }
}

/** The live process holding the state directory, if any. */
export async function lockHolder (dir: string): Promise<number | null> {
  const pid = Number((await fsp.readFile(join(dir, 'lock'), 'utf8').catch(() => '')).trim())
  return pid > 0 && pid !== process.pid && alive(pid) ? pid : null
}

export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
