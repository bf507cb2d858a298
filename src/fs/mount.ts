// Mounting through fuse-native, with the options replfs needs and the
// binding cannot express (see native-notes/options.md).
import Fuse from 'fuse-native'
import { promises as fsp } from 'node:fs'
import { replError } from '../core/errors.js'
import type { OpTable } from './ops.js'
import type { GroupSpec } from '../core/config.js'
import { nativeCore, type CaptureHandle, type SessionHandle } from '../native/addon.js'

export interface MountOptions {
  fsname: string
  readOnly: boolean
}

export interface Mounted {
  unmount (): Promise<void>
}

/** Extra libfuse options. fuse-native has no key for them, but it copies
 *  the fsname value unescaped into the comma-separated -o string, so they
 *  ride along after it:
 *  - big_writes,max_write=131072: 128 KiB write requests instead of 4 KiB.
 *  - default_permissions: the kernel checks modes, as on a local fs.
 *  The fsname itself must not contain commas. */
function optionString (o: MountOptions): string {
  const extra = ['big_writes', 'max_write=131072', 'default_permissions']
  if (o.readOnly) extra.push('ro')
  return [o.fsname.replace(/[,\s]/g, '_'), ...extra].join(',')
}

export async function mountFs (mountpoint: string, ops: OpTable, o: MountOptions): Promise<Mounted> {
  const st = await fsp.stat(mountpoint).catch(() => null)
  if (!st) throw replError('USAGE', `mountpoint ${mountpoint} does not exist`)
  if (!st.isDirectory()) throw replError('USAGE', `mountpoint ${mountpoint} is not a directory`)
  const fuse = new Fuse(mountpoint, ops, {
    fsname: optionString(o),
    subtype: 'replfs',
    // Our own bounds apply instead: the binding's 15 s timeout answers the
    // kernel ETIMEDOUT while the handler goes on and may still journal.
    timeout: false,
    // Cached attributes are safe: every change to the backing store goes
    // through this mount (the backing directory is ours while mounted).
    attrTimeout: 1,
    entryTimeout: 1
  })
  await new Promise<void>((resolve, reject) => fuse.mount(err => err
    ? reject(replError('MOUNT_FAILED', `cannot mount ${mountpoint}: ${err.message}`, err.message.includes('in use') ? 'something is already mounted there' : undefined))
    : resolve()))
  let done: Promise<void> | null = null
  return {
    unmount: () => (done ??= new Promise<void>((resolve, reject) => fuse.unmount(err => err ? reject(err) : resolve())))
  }
}

// ---- the native core -----------------------------------------------------

export interface CoreMountOptions {
  fsname: string
  readOnly: boolean
  /** the journal appender the mount captures into (null: read-only view) */
  capture: CaptureHandle | null
  threads?: number
}

/** Which server a mount uses: the native core unless REPLFS_CORE=js
 *  (fuse-native, kept only until the core has proven itself everywhere). */
export function useNativeCore (): boolean {
  return process.env.REPLFS_CORE !== 'js'
}

/** Mounts the group through the native core (src/native): FUSE is served on
 *  the core's threads; nothing here is on the path of a request. */
export async function mountCore (mountpoint: string, spec: GroupSpec, o: CoreMountOptions): Promise<Mounted & { session: SessionHandle }> {
  const st = await fsp.stat(mountpoint).catch(() => null)
  if (!st) throw replError('USAGE', `mountpoint ${mountpoint} does not exist`)
  if (!st.isDirectory()) throw replError('USAGE', `mountpoint ${mountpoint} is not a directory`)
  const core = nativeCore()
  const threads = Number(process.env.REPLFS_THREADS ?? o.threads ?? 0)
  const session = await core.mount({
    mountpoint,
    fsname: o.fsname.replace(/[,\s]/g, '_'),
    readOnly: o.readOnly,
    single: spec.single,
    volumes: spec.volumes.map(v => ({ num: v.num, name: v.name, kind: v.kind, path: v.path, size: v.size })),
    threads,
    // Cached attributes are safe: every change to the backing store goes
    // through this mount (the backing directory is ours while mounted).
    attrTimeout: 1,
    entryTimeout: 1
  }, o.capture)
  // The core's threads hold no handle on the event loop: while mounted,
  // this timer keeps the process (the mount's server) alive.
  const alive = setInterval(() => {}, 1 << 30)
  let done: Promise<void> | null = null
  return { session, unmount: () => (done ??= core.unmount(session).finally(() => clearInterval(alive))) }
}
