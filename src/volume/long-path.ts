// Absolute paths of any length. The kernel refuses a path of PATH_MAX
// (4096) bytes or more in one call, yet a volume's tree can be deeper: a
// record's path is up to 4095 bytes under the volume root, and the root
// has a path of its own. Node has no openat, so a long path is reached in
// steps: a directory fd opened on a prefix short enough, then the next
// stretch opened through `/proc/self/fd/<fd>/<stretch>` (the kernel follows
// the fd's magic link, then resolves the short rest as usual), and the
// call made on `/proc/self/fd/<last fd>/<rest>`. A short path (the common
// case) is used as it is: no fd, no extra call. A path holding a name that
// is not UTF-8 (an escaped string, core/names.ts) reaches the call as bytes.
//
// What the path resolves to is exactly what the long path would: prefixes
// are opened following symlinks, as resolving the whole path would. This is
// for trusted trees (the primary's backing store, the secondary reading its
// own copy); records from a peer go through dir.ts, which confines them.
import fs from 'node:fs'
import { hasEscapes, nameToBytes, syscallName } from '../core/names.js'

/** Longest path handed to a single call (PATH_MAX less the NUL, less room
 *  for '/proc/self/fd/NNNNNNNNNN/'). */
const stretchBytesMax = 4000
// O_PATH: a handle on the directory for lookups only (no read permission
// needed); Node's fs.constants does not name it.
const openDirFlags = 0o10000000 | fs.constants.O_DIRECTORY

export function fdPath (fd: number, rel: string): string {
  return rel === '' ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${rel}`
}

/** `/proc/self/fd/<fd>/<name>`, a Buffer when the name is not UTF-8: a
 *  name in a directory held by an fd (volume/dir.ts, verify-read.ts). */
export function entryPath (fd: number, name: string): string | Buffer {
  return hasEscapes(name) ? Buffer.concat([Buffer.from(fdPath(fd, '') + '/'), nameToBytes(name)]) : fdPath(fd, name)
}

/** Splits an absolute path into stretches of at most stretchBytesMax bytes,
 *  cut at slashes (a name is at most 255 bytes, so a cut always exists). */
export function stretches (abs: string): string[] {
  const out: string[] = []
  let rest = abs
  while (Buffer.byteLength(rest) > stretchBytesMax) {
    let cut = rest.lastIndexOf('/', stretchBytesMax)
    while (cut > 0 && Buffer.byteLength(rest.slice(0, cut)) > stretchBytesMax) cut = rest.lastIndexOf('/', cut - 1)
    if (cut <= 0) throw Object.assign(new Error(`ENAMETOOLONG: a name in ${rest.slice(0, 80)}... is too long`), { code: 'ENAMETOOLONG' })
    out.push(rest.slice(0, cut))
    rest = rest.slice(cut + 1)
  }
  out.push(rest)
  return out
}

/** Opens, one stretch at a time, the directory holding the last stretch
 *  of `parts`; returns its fd (the caller closes it). */
function openLeading (parts: string[]): number {
  let fd = -1
  try {
    for (const part of parts.slice(0, -1)) {
      const next = fs.openSync(syscallName(fd < 0 ? part : fdPath(fd, part)), openDirFlags)
      if (fd >= 0) fs.closeSync(fd)
      fd = next
    }
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd)
    throw err
  }
  return fd
}

/** Calls `fn` with a path naming `abs` that the kernel takes in one call;
 *  any fd opened on the way is closed when `fn` returns or throws. */
export function withPathSync<T> (abs: string, fn: (p: string | Buffer) => T): T {
  if (Buffer.byteLength(abs) <= stretchBytesMax) return fn(syscallName(abs))
  const parts = stretches(abs)
  const fd = openLeading(parts)
  try {
    return fn(syscallName(fdPath(fd, parts[parts.length - 1])))
  } finally {
    fs.closeSync(fd)
  }
}

/** withPathSync for an asynchronous `fn`: the fd stays open until it
 *  settles. (The directories are opened synchronously: an O_PATH open is a
 *  lookup, and a raw fd, unlike a FileHandle, is ours to close.) */
export async function withPath<T> (abs: string, fn: (p: string | Buffer) => Promise<T>): Promise<T> {
  if (Buffer.byteLength(abs) <= stretchBytesMax) return fn(syscallName(abs))
  const parts = stretches(abs)
  const fd = openLeading(parts)
  try {
    return await fn(syscallName(fdPath(fd, parts[parts.length - 1])))
  } finally {
    fs.closeSync(fd)
  }
}
