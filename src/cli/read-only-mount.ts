// A read-only FUSE view of a secondary's copies: the same core as the
// primary's mount, refusing every change with EROFS, capturing nothing.
import type { GroupSpec } from '../core/config.js'
import { Layout } from '../fs/layout.js'
import { makeOps } from '../fs/ops.js'
import { mountCore, mountFs, useNativeCore, type Mounted } from '../fs/mount.js'

export async function mountReadOnly (spec: GroupSpec, mountpoint: string): Promise<Mounted> {
  const fsname = `replfs-${spec.group}-replica`
  if (useNativeCore()) return mountCore(mountpoint, spec, { fsname, readOnly: true, capture: null })
  const ops = makeOps({ layout: new Layout(spec), capture: null, startedMs: Date.now(), readOnly: true })
  return mountFs(mountpoint, ops, { fsname, readOnly: true })
}
