// Path confinement, the pure half: is a path from a record a plain
// volume-relative path? Records arrive from a peer, so a path is hostile
// until this says otherwise. No I/O here; the other half (symlinks met on
// the way down) needs the filesystem and lives in dir.ts.
import { replError } from '../core/errors.js'
import { nameBytesMax, pathBytesMax } from '../core/limits.js'
import { nameByteLength } from '../core/names.js'

function escape (p: string, why: string): never {
  const shown = p.length > 120 ? `${p.slice(0, 120)}...` : p // a hostile path can be 4 KiB
  throw replError('PATH_ESCAPE', `record path ${JSON.stringify(shown)} ${why}`,
    'the peer sent a path outside its volume; it is refused, nothing was applied')
}

/** Returns `p` unchanged if it is '' (the volume root) or a relative path of
 *  plain names joined by single slashes; throws PATH_ESCAPE otherwise. Names
 *  '.' and '..' are refused outright rather than normalised: a path the
 *  primary captured never holds them, so one that does is not ours. */
export function checkRelPath (p: string): string {
  if (typeof p !== 'string') escape(String(p), 'is not a string')
  if (p === '') return p
  if (p.includes('\0')) escape(p, 'contains NUL')
  if (nameByteLength(p) > pathBytesMax) escape(p, `is longer than ${pathBytesMax} bytes`)
  if (p.startsWith('/')) escape(p, 'is absolute')
  if (p.endsWith('/')) escape(p, 'ends with a slash')
  for (const name of p.split('/')) {
    if (name === '') escape(p, 'has an empty component')
    if (name === '.' || name === '..') escape(p, `has a '${name}' component`)
    if (nameByteLength(name) > nameBytesMax) escape(p, `has a component longer than ${nameBytesMax} bytes`)
  }
  return p
}

/** Splits a checked non-root path into its parent ('' for the root) and its
 *  last name. */
export function splitRelPath (p: string): { parent: string, name: string } {
  const i = p.lastIndexOf('/')
  return i < 0 ? { parent: '', name: p } : { parent: p.slice(0, i), name: p.slice(i + 1) }
}

/** True if `real` (an absolute, symlink-free path) is `root` or inside it. */
export function isInside (root: string, real: string): boolean {
  if (real === root) return true
  return real.startsWith(root.endsWith('/') ? root : root + '/')
}
