// Extended attributes. Node has no xattr API; @napi-rs/xattr ships prebuilt
// binaries as ordinary registry packages (no build or download at install)
// and calls the l*xattr variants, so it never follows a final symlink, which
// is what confinement wants. It is loaded on first use: a platform without a
// binary then fails only xattr records, not the whole apply side.
import { createRequire } from 'node:module'
import { constants as osc } from 'node:os'
import { nativeCore } from '../native/addon.js'

type Native = typeof import('@napi-rs/xattr')

let native: Native | null = null

function lib (): Native {
  if (!native) native = createRequire(import.meta.url)('@napi-rs/xattr') as Native
  return native
}

// The binding reports errors as "Operation not permitted (os error 1)" with
// code GenericFailure; give them back their errno name so callers can match
// on err.code like any other fs error.
function errno (err: unknown, op: string, path: string): Error {
  const msg = (err as Error).message ?? String(err)
  const m = /os error (\d+)/.exec(msg)
  const num = m ? Number(m[1]) : 0
  const name = Object.entries(osc.errno).find(([, v]) => v === num)?.[0] ?? 'EIO'
  const out = new Error(`${name}: ${msg}, ${op} '${path}'`) as NodeJS.ErrnoException
  out.code = name
  out.errno = -num
  out.syscall = op
  out.path = path
  return out
}

export async function setXattr (abs: string, name: string, value: Uint8Array): Promise<void> {
  try {
    await lib().setAttribute(abs, name, Buffer.from(value.buffer, value.byteOffset, value.length))
  } catch (err) { throw errno(err, 'lsetxattr', abs) }
}

export async function getXattr (abs: string, name: string): Promise<Buffer | null> {
  try {
    return await lib().getAttribute(abs, name)
  } catch (err) { throw errno(err, 'lgetxattr', abs) }
}

export async function removeXattr (abs: string, name: string): Promise<void> {
  try {
    await lib().removeAttribute(abs, name)
  } catch (err) { throw errno(err, 'lremovexattr', abs) }
}

export async function listXattr (abs: string): Promise<string[]> {
  try {
    return await lib().listAttributes(abs)
  } catch (err) { throw errno(err, 'llistxattr', abs) }
}

// Synchronous forms, for the FUSE ops (fs/ops.ts does every backing call
// synchronously) and for restating (a read and its record in one step).

const XATTR_CREATE = 1
const XATTR_REPLACE = 2

export function getXattrSync (abs: string, name: string): Buffer | null {
  try { return lib().getAttributeSync(abs, name) } catch (err) { throw errno(err, 'lgetxattr', abs) }
}

export function listXattrSync (abs: string): string[] {
  try { return lib().listAttributesSync(abs) } catch (err) { throw errno(err, 'llistxattr', abs) }
}

/** setxattr(2) with its flags (the binding has none: they are checked
 *  here first, the same race any passthrough has). */
export function setXattrSync (abs: string, name: string, value: Uint8Array, flags: number): void {
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    const exists = getXattrSync(abs, name) !== null
    if ((flags & XATTR_CREATE) && exists) throw errno(new Error(`os error ${osc.errno.EEXIST}`), 'lsetxattr', abs)
    if ((flags & XATTR_REPLACE) && !exists) throw errno(new Error(`os error ${osc.errno.ENODATA}`), 'lsetxattr', abs)
  }
  try { lib().setAttributeSync(abs, name, value) } catch (err) { throw errno(err, 'lsetxattr', abs) }
}

export function removeXattrSync (abs: string, name: string): void {
  try { lib().removeAttributeSync(abs, name) } catch (err) { throw errno(err, 'lremovexattr', abs) }
}

/** name → value of every attribute; none for a path that cannot tell. */
export function allXattrsSync (abs: string | Buffer): Array<[string, Buffer]> {
  // A path as bytes (a name that is not UTF-8): the binding takes text only.
  if (typeof abs !== 'string') return nativeCore().xattrs(abs)
  const out: Array<[string, Buffer]> = []
  let names: string[]
  try { names = listXattrSync(abs) } catch { return out }
  for (const name of names) {
    try {
      const v = getXattrSync(abs, name)
      if (v) out.push([name, v])
    } catch {}
  }
  return out
}
