// A read-only FUSE view of a secondary's copies: the same core as the
// primary's mount, refusing every change with EROFS, capturing nothing.
import type { GroupSpec } from '../core/config.js'
import { mountCore, type Mounted } from '../fs/mount.js'

export async function mountReadOnly (spec: GroupSpec, mountpoint: string): Promise<Mounted> {
  return mountCore(mountpoint, spec, { fsname: `replfs-${spec.group}-replica`, readOnly: true, capture: null })
}
