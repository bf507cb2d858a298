// Reading one side for an online verify: what a volume holds at a path
// (entry, directory names, block checksums), the same code on both sides.
// The primary reads its backing store under the group lock; the secondary
// reads its copy (never its journal) exactly at the requested sequence.
//
// Synchronous on purpose: one request is read in one turn of the event
// loop, so nothing the process itself does (an apply on the secondary) can
// fall between the reads of one answer. Paths come from a peer on the
// secondary: they are confined like apply's (volume/dir.ts: checkRelPath,
// the parent opened beneath the volume root, the last name never
// followed). Reading an entry through its parent's fd also reaches trees
// deeper than PATH_MAX, and names are bytes at every call (core/names.ts):
// a name that is not UTF-8 is read, listed and answered as its bytes.
import fs from 'node:fs'
import { createHash } from 'node:crypto'
import type { VolumeSpec } from '../core/config.js'
import { nameFromBytes, syscallName } from '../core/names.js'
import { checkRelPath, splitRelPath } from '../volume/confine.js'
import { entryPath } from '../volume/long-path.js'
import { allXattrsSync } from '../volume/xattr.js'
import { nativeCore } from '../native/addon.js'
import { verifyNamesMax, verifyXattrsMax, type VerifyAnswer, type VerifyEntry, type VerifyItem } from './messages.js'

/** Checksum of one block or one xattr value: SHA-256 truncated to 128 bits
 *  (the same function as resync's blockSum). */
export function verifySum (data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest().subarray(0, 16)
}

/** Directory fds of the parents met in one read, by volume and parent
 *  path (null: none there, or it leads out of the root). */
type Parents = Map<string, number | null>

/** The volumes of one side, their roots resolved once. */
export class VolumeReader {
  private readonly roots = new Map<number, { kind: 'dir' | 'image', root: string }>()

  constructor (specs: readonly VolumeSpec[]) {
    for (const v of specs) this.roots.set(v.num, { kind: v.kind, root: v.kind === 'dir' ? fs.realpathSync(v.path) : v.path })
  }

  /** The answers to `items`, in order; `inodes` (the primary's) gets each
   *  entry's device:inode, for the hard-link groups of a volume. With
   *  `data`, the bytes read for an item's blocks go there instead of being
   *  summed (the primary sums them after letting go of its group lock:
   *  `sumBlocks`). */
  read (items: VerifyItem[], inodes?: Array<string | null>, data?: Array<Buffer | null>): VerifyAnswer[] {
    const firsts = new Map<string, number>() // dev:ino -> first item index
    const buf = { b: Buffer.alloc(0) }
    return this.withParents(parents => items.map((it, i) => {
      const abs = this.resolve(it.vol, it.path, parents)
      let st: fs.BigIntStats | null = null
      if (abs !== null) { try { st = fs.lstatSync(abs, { bigint: true }) } catch {} }
      let entry: VerifyEntry | null = null
      if (it.entry) {
        let link = i
        if (st && !st.isDirectory()) {
          const key = `${st.dev}:${st.ino}`
          link = firsts.get(key) ?? i
          if (!firsts.has(key)) firsts.set(key, i)
          if (inodes) inodes[i] = key
        }
        entry = describeEntry(abs, st, link)
      }
      const all = it.list && abs !== null && st?.isDirectory() ? listNames(abs) : (it.list ? [] : null)
      const names = all && all.length > verifyNamesMax ? all.slice(0, verifyNamesMax) : all
      let sums: Buffer[] = []
      if (it.len > 0 && abs !== null && st?.isFile()) {
        // Kept for later (data): a buffer of its own, not the shared one.
        const bytes = readRange(abs, it.off, it.len, data ? { b: Buffer.allocUnsafe(it.len) } : buf)
        if (data) data[i] = bytes
        else sums = sumBlocks(bytes, it.block)
      }
      return { entry, names, more: all !== null && all.length > verifyNamesMax, sums }
    }))
  }

  /** Every name of a directory (the primary's side of a large one). */
  names (vol: number, path: string): string[] {
    return this.withParents(parents => {
      const abs = this.resolve(vol, path, parents)
      return abs === null ? [] : listNames(abs)
    })
  }

  /** Runs `fn` with an empty set of parent fds, closed when it returns. */
  private withParents<T> (fn: (parents: Parents) => T): T {
    const parents: Parents = new Map()
    try {
      return fn(parents)
    } finally {
      for (const fd of parents.values()) if (fd !== null) fs.closeSync(fd)
    }
  }

  /** A path naming a volume path's entry in one call (through its parent's
   *  fd, opened beneath the root), or null when nothing can be there (an
   *  unknown volume, a missing parent, a parent that leads out of the root:
   *  the parent's own entry then shows the difference). */
  private resolve (vol: number, path: string, parents: Parents): string | Buffer | null {
    const v = this.roots.get(vol)
    if (!v) return null
    checkRelPath(path)
    if (v.kind === 'image') return path === '' ? v.root : null
    if (path === '') return v.root
    const { parent, name } = splitRelPath(path)
    const key = `${vol}:${parent}`
    let fd = parents.get(key)
    if (fd === undefined) {
      try { fd = nativeCore().openBeneath(v.root, parent === '' ? '.' : syscallName(parent)) } catch { fd = null }
      parents.set(key, fd)
    }
    return fd === null ? null : entryPath(fd, name)
  }
}

function describeEntry (abs: string | Buffer | null, st: fs.BigIntStats | null, link: number): VerifyEntry {
  const none = { mode: 0, uid: 0, gid: 0, size: 0, nlink: 0, link, target: '', xattrs: [] }
  if (!abs || !st) return { type: 'absent', ...none }
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other'
  let target = ''
  if (type === 'symlink') { try { target = nameFromBytes(fs.readlinkSync(abs, { encoding: 'buffer' })) } catch {} }
  const xattrs = allXattrsSync(abs).slice(0, verifyXattrsMax).map(([name, value]) => ({ name, sum: verifySum(value) })).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return {
    type, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: type === 'file' ? Number(st.size) : 0,
    nlink: type === 'dir' ? 0 : Number(st.nlink), link, target, xattrs
  }
}

function listNames (abs: string | Buffer): string[] {
  try { return fs.readdirSync(abs, { encoding: 'buffer' }).map(nameFromBytes).sort() } catch { return [] }
}

/** The bytes of [off, off+len), clipped to the file's end (a view of `buf`). */
function readRange (abs: string | Buffer, off: number, len: number, buf: { b: Buffer }): Buffer {
  let fd: number
  try { fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK) } catch { return Buffer.alloc(0) }
  try {
    if (buf.b.length < len) buf.b = Buffer.allocUnsafe(len)
    let n = 0
    while (n < len) {
      const r = fs.readSync(fd, buf.b, n, len - n, off + n)
      if (r <= 0) break
      n += r
    }
    return buf.b.subarray(0, n)
  } finally {
    fs.closeSync(fd)
  }
}

/** One checksum per `block` of `bytes` (the last one shorter). */
export function sumBlocks (bytes: Buffer, block: number): Buffer[] {
  const sums: Buffer[] = []
  for (let at = 0; at < bytes.length; at += block) sums.push(verifySum(bytes.subarray(at, Math.min(bytes.length, at + block))))
  return sums
}
