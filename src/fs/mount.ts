// Mounting a group through the native core (src/native): FUSE is served on
// the core's threads; nothing here is on the path of a request.
import { promises as fsp } from 'node:fs'
import { replError } from '../core/errors.js'
import type { GroupSpec } from '../core/config.js'
import { nativeCore, type CaptureHandle, type SessionHandle } from '../native/addon.js'

export interface Mounted {
  unmount (): Promise<void>
}

export interface CoreMountOptions {
  fsname: string
  readOnly: boolean
  /** the journal appender the mount captures into (null: read-only view) */
  capture: CaptureHandle | null
  threads?: number
  /** serve FUSE over io_uring (the core's uring.c) instead of /dev/fuse */
  ioUring?: boolean
  /** microseconds a lone reader polls for the next request after a reply (reader_wait.c) */
  pollUs?: number
}

/** Measured on 4 KiB QD1 and SQLite on this 2-core VM (native-notes/performance.md 14). */
export const defaultPollUs = 50

/** Mounts the group; resolves once the kernel's INIT is answered. */
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
    ioUring: o.ioUring === true,
    pollUs: o.pollUs ?? defaultPollUs,
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
