// Where a mount path lives: which volume, which volume-relative path, which
// backing path. Two layouts (core/config.ts): a single directory volume at
// the mount root, or a group whose volumes are the root's entries (the root
// itself is synthetic and read-only).
import { join } from 'node:path'
import type { GroupSpec, VolumeSpec } from '../core/config.js'

export type Place =
  | { at: 'root' } // synthetic group root
  | { at: 'volume', vol: VolumeSpec, rel: string, backing: string }
  | { at: 'none' } // not a volume name under the group root

export class Layout {
  private readonly byName = new Map<string, VolumeSpec>()
  constructor (readonly spec: GroupSpec) {
    for (const v of spec.volumes) this.byName.set(v.name, v)
  }

  /** Maps a FUSE path ('/', '/a/b') to its place. libfuse hands us
   *  normalised absolute paths: no '.', '..' or double slashes. */
  place (path: string): Place {
    if (this.spec.single) {
      const vol = this.spec.volumes[0]
      const rel = path === '/' ? '' : path.slice(1)
      return { at: 'volume', vol, rel, backing: rel === '' ? vol.path : join(vol.path, rel) }
    }
    if (path === '/') return { at: 'root' }
    const slash = path.indexOf('/', 1)
    const name = slash < 0 ? path.slice(1) : path.slice(1, slash)
    const vol = this.byName.get(name)
    if (!vol) return { at: 'none' }
    const rel = slash < 0 ? '' : path.slice(slash + 1)
    if (vol.kind === 'image' && rel !== '') return { at: 'none' }
    return { at: 'volume', vol, rel, backing: rel === '' ? vol.path : join(vol.path, rel) }
  }

  /** Backing path of a volume-relative path (recovery), null if unknown. */
  backing (num: number, rel: string): string | null {
    const vol = this.spec.volumes[num]
    if (!vol) return null
    return rel === '' ? vol.path : join(vol.path, rel)
  }

  names (): string[] {
    return this.spec.volumes.map(v => v.name)
  }
}
