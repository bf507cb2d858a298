// Extended attributes. Node has no xattr API; @napi-rs/xattr ships prebuilt
// binaries as ordinary registry packages (no build or download at install)
// and calls the l*xattr variants, so it never follows a final symlink, which
// is what confinement wants. It is loaded on first use: a platform without a
// binary then fails only xattr records, not the whole apply side.
import { createRequire } from 'node:module'
import { constants as osc } from 'node:os'

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
