// Extended attributes of backing files, through @napi-rs/xattr (prebuilt,
// shipped in the registry package). It has no XATTR_CREATE/REPLACE flags;
// they are checked here first (the same race a passthrough has anyway).
import * as xattr from '@napi-rs/xattr'
import { constants } from 'node:os'

const XATTR_CREATE = 1
const XATTR_REPLACE = 2

function osError (errno: number, syscall: string): NodeJS.ErrnoException {
  const e = new Error(`${syscall} failed (os error ${errno})`) as NodeJS.ErrnoException
  e.errno = -errno
  return e
}

export async function getXattr (path: string, name: string): Promise<Buffer | null> {
  return xattr.getAttribute(path, name)
}

export async function listXattrs (path: string): Promise<string[]> {
  return xattr.listAttributes(path)
}

export async function setXattr (path: string, name: string, value: Buffer, flags: number): Promise<void> {
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    const exists = (await xattr.getAttribute(path, name)) !== null
    if ((flags & XATTR_CREATE) && exists) throw osError(constants.errno.EEXIST, 'setxattr')
    if ((flags & XATTR_REPLACE) && !exists) throw osError(constants.errno.ENODATA, 'setxattr')
  }
  await xattr.setAttribute(path, name, value)
}

export async function removeXattr (path: string, name: string): Promise<void> {
  await xattr.removeAttribute(path, name)
}

export async function allXattrs (path: string): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = []
  for (const name of await listXattrs(path).catch(() => [])) {
    const v = await getXattr(path, name).catch(() => null)
    if (v) out.push([name, v])
  }
  return out
}
