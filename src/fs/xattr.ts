// Extended attributes of backing files for the FUSE ops, synchronously
// (same reason as every backing call in ops.ts), through @napi-rs/xattr,
// which uses the l*xattr calls and has no XATTR_CREATE/REPLACE flags; they
// are checked here first (the race a passthrough has anyway).
import * as xattr from '@napi-rs/xattr'
import { constants } from 'node:os'

const XATTR_CREATE = 1
const XATTR_REPLACE = 2

function osError (errno: number): NodeJS.ErrnoException {
  const e = new Error(`setxattr failed (os error ${errno})`) as NodeJS.ErrnoException
  e.errno = -errno
  return e
}

export function getXattrSync (path: string, name: string): Buffer | null {
  return xattr.getAttributeSync(path, name)
}

export function listXattrsSync (path: string): string[] {
  return xattr.listAttributesSync(path)
}

export function setXattrSync (path: string, name: string, value: Buffer, flags: number): void {
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    const exists = xattr.getAttributeSync(path, name) !== null
    if ((flags & XATTR_CREATE) && exists) throw osError(constants.errno.EEXIST)
    if ((flags & XATTR_REPLACE) && !exists) throw osError(constants.errno.ENODATA)
  }
  xattr.setAttributeSync(path, name, value)
}

export function removeXattrSync (path: string, name: string): void {
  xattr.removeAttributeSync(path, name)
}

/** name → value of every attribute (recovery restates them). */
export function allXattrs (path: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = []
  let names: string[] = []
  try { names = listXattrsSync(path) } catch { return out }
  for (const name of names) {
    try {
      const v = getXattrSync(path, name)
      if (v) out.push([name, v])
    } catch {}
  }
  return out
}
