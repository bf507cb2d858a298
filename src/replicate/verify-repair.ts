// Online verify, the repair: what differs is restated through the journal
// (capture/restate.ts), so the fix reaches the copy in order with every
// other change. Exactly the mismatched parts: the byte ranges of a data
// mismatch, a missing entry whole, a remove for an extra one, state and
// xattrs where attributes differ, a hard-link group rebuilt. Each step
// reads the primary and emits its records in one go; the caller runs the
// steps under the group lock. Backing paths can pass PATH_MAX and hold
// names that are not UTF-8: every call takes them through withPathSync,
// as restate does.
import fs from 'node:fs'
import type { Record } from '../core/records.js'
import { recordDataBytesMax } from '../core/limits.js'
import { emitState, lstatOrNull, pathSteps, restateBytes, type RestateSource, type Step } from '../capture/restate.js'
import { withPathSync } from '../volume/long-path.js'
import type { LinkGroups, Mismatch, VerifyTask } from './verify-compare.js'

/** The steps that repair `found`; `recheck` gets the tasks that verify
 *  the repaired parts again. */
export function * repairSteps (found: Mismatch[], groups: LinkGroups, src: RestateSource, emit: (r: Record) => void, recheck: VerifyTask[]): Generator<Step> {
  const relinked = new Set<string>()
  const groupOf = (vol: number, path: string): string[] => {
    for (const g of groups.values()) if (g.vol === vol && g.paths.includes(path)) return g.paths
    return [path]
  }
  for (const m of found) {
    const abs = src.backing(m.vol, m.path)
    if (abs === null) continue
    switch (m.kind) {
      case 'data':
        for (const [start, end] of m.ranges ?? []) {
          for (let off = start; off < end; off += recordDataBytesMax) {
            const s = off
            yield () => restateBytes(m.vol, m.path, abs, s, Math.min(end, s + recordDataBytesMax), emit)
          }
          recheck.push({ kind: 'blocks', vol: m.vol, path: m.path, off: start, len: end - start })
        }
        break
      case 'missing': case 'type':
        yield * pathSteps(m.vol, m.path, abs, true, src, emit)
        recheck.push({ kind: 'entry', vol: m.vol, path: m.path, deep: true })
        break
      case 'extra':
        yield () => { emit({ kind: 'state', vol: m.vol, path: m.path, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false }); return 0 }
        recheck.push({ kind: 'entry', vol: m.vol, path: m.path, deep: false })
        break
      case 'mode': case 'owner': case 'size': case 'target': case 'xattr':
        yield () => {
          emitState(m.vol, m.path, abs, lstatOrNull(abs), false, src, emit)
          const mine = new Set(withPathSync(abs, p => src.xattrs(p)).map(([n]) => n))
          for (const name of m.extraXattrs ?? []) if (!mine.has(name)) emit({ kind: 'removexattr', vol: m.vol, path: m.path, name })
          return 0
        }
        recheck.push({ kind: 'entry', vol: m.vol, path: m.path, deep: false })
        break
      case 'links': {
        const paths = m.paths ?? groupOf(m.vol, m.path)
        const key = `${m.vol}\0${paths.join('\0')}`
        if (relinked.has(key)) break // the group is done already
        relinked.add(key)
        yield () => relink(m.vol, paths, src, emit)
        if (paths.length > 1) recheck.push({ kind: 'links', vol: m.vol, paths })
        for (const p of paths) recheck.push({ kind: 'entry', vol: m.vol, path: p, deep: false })
        break
      }
    }
  }
}

/** Makes the copy's hard links of `paths` what the primary's are: every
 *  path removed on the copy, then per inode the first path restated whole
 *  and the others linked to it. One step: one read of the primary. */
function relink (vol: number, paths: string[], src: RestateSource, emit: (r: Record) => void): number {
  const byInode = new Map<string, string[]>()
  for (const p of paths) {
    emit({ kind: 'state', vol, path: p, type: 'absent', mode: 0, uid: 0, gid: 0, size: 0, target: '', whole: false })
    const abs = src.backing(vol, p)
    let st: fs.BigIntStats | null = null
    try { st = abs ? withPathSync(abs, p => fs.lstatSync(p, { bigint: true })) : null } catch {}
    if (!st) continue
    const key = st.isDirectory() ? `dir:${p}` : `${st.dev}:${st.ino}`
    const g = byInode.get(key)
    if (g) g.push(p)
    else byInode.set(key, [p])
  }
  let bytes = 0
  for (const [first, ...others] of byInode.values()) {
    for (const step of pathSteps(vol, first, src.backing(vol, first)!, true, src, emit)) bytes += step()
    for (const to of others) emit({ kind: 'link', vol, path: first, to })
  }
  return bytes
}
