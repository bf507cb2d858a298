// fuse-native wants integer codes only: 0, a byte count, or -errno. A null,
// undefined or Error object makes the binding throw inside nextTick and the
// kernel request never gets a reply (see native-notes/pitfalls.md).
import { constants } from 'node:os'

const E = constants.errno

export const EIO = -E.EIO
export const ENOENT = -E.ENOENT
export const EPERM = -E.EPERM
export const EACCES = -E.EACCES
export const EEXIST = -E.EEXIST
export const EBADF = -E.EBADF
export const ENOSPC = -E.ENOSPC
export const EROFS = -E.EROFS
export const ENODATA = -E.ENODATA
export const ENOTSUP = -E.ENOTSUP
export const EXDEV = -E.EXDEV

/** -errno for a Node fs error (err.errno is already negative there), or for
 *  a napi-rs error whose message ends "(os error N)". */
export function toErrno (err: unknown): number {
  const e = err as { errno?: unknown, code?: unknown, message?: unknown }
  if (typeof e?.errno === 'number' && e.errno < 0) return e.errno
  if (typeof e?.code === 'string' && e.code in E) return -E[e.code as keyof typeof E]
  const m = typeof e?.message === 'string' ? /os error (\d+)/.exec(e.message) : null
  if (m) return -Number(m[1])
  return EIO
}
