// What a state directory may be used for, checked before anything is
// written: it serves one role (a primary's journal is not a secondary's
// copy log, and the reverse: each side would take the other's files for
// its own), and it lives outside every volume and the mountpoint (a journal
// inside what it journals captures its own appends; inside a volume copy
// the primary's resync would delete it).
import fs, { promises as fsp } from 'node:fs'
import { join, resolve, sep } from 'node:path'
import type { GroupSpec } from '../core/config.js'
import { replError } from '../core/errors.js'
import { cursorFile } from '../journal/applied-cursor.js'

export type Role = 'primary' | 'secondary'

const roleFile = 'role'

/** The role a state directory was used for: its `role` file, or for one
 *  made before that file existed, what it holds (the secondary's applied
 *  cursor, the primary's activity log). */
export async function stateRole (state: string): Promise<Role | null> {
  const text = await fsp.readFile(join(state, roleFile), 'utf8').catch(() => null)
  if (text !== null) {
    const r = text.trim()
    if (r === 'primary' || r === 'secondary') return r
    throw replError('USAGE', `${join(state, roleFile)} holds "${r.slice(0, 40)}", not primary or secondary`, 'restore it or use another --state')
  }
  if (fs.existsSync(join(state, cursorFile))) return 'secondary'
  if (fs.existsSync(join(state, 'activity.log'))) return 'primary'
  return null
}

export async function checkStateRole (state: string, want: Role): Promise<void> {
  const was = await stateRole(state)
  if (was === null || was === want) return
  const verb = (r: Role) => r === 'primary' ? '`replfs mount`' : '`replfs serve`'
  throw replError('USAGE', `state directory ${state} belongs to a ${was} (${verb(was)}), not a ${want}`,
    `give ${verb(want)} its own --state; a state directory serves one role (\`replfs promote\` / \`replfs demote\` change it)`)
}

export async function writeStateRole (state: string, role: Role): Promise<void> {
  await fsp.writeFile(join(state, roleFile), role + '\n', { mode: 0o644 })
}

/** Real path of `p`, or of its nearest existing ancestor joined with the
 *  rest (the state directory may not exist yet). */
function realish (p: string): string {
  const abs = resolve(p)
  const rest: string[] = []
  let cur = abs
  for (;;) {
    try {
      return join(fs.realpathSync(cur), ...rest.reverse())
    } catch {
      const parent = resolve(cur, '..')
      if (parent === cur) return abs
      rest.push(cur.slice(parent.length).replace(/^\//, ''))
      cur = parent
    }
  }
}

const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep)

/** Refuses a state directory inside a directory volume or the mountpoint. */
export function checkStatePlacement (state: string, spec: GroupSpec, mountpoint: string | null): void {
  const s = realish(state)
  for (const v of spec.volumes) {
    if (v.kind !== 'dir') continue
    if (within(s, realish(v.path))) {
      throw replError('USAGE', `state directory ${state} is inside volume ${v.name} (${v.path})`, 'put the state directory outside every volume')
    }
  }
  if (mountpoint && within(s, realish(mountpoint))) {
    throw replError('USAGE', `state directory ${state} is inside the mountpoint ${mountpoint}`, 'put the state directory outside the mount')
  }
}
