// Snapshot of a directory tree for comparisons: names, types, content
// hashes, modes, link targets, xattrs (what "identical" means in tests).
// Trees can be deeper than PATH_MAX: each directory is held by an fd and
// its entries named through /proc/self/fd/<fd>/<name>, a short path. Names
// are bytes (a key shows one that is not UTF-8 escaped: core/names.ts).
import { readdirSync, lstatSync, readFileSync, readlinkSync, openSync, closeSync, constants } from 'node:fs'
import { createHash } from 'node:crypto'
import { nameFromBytes } from '../../dist/core/names.js'
import { nativeCore } from '../../dist/native/addon.js'

/** Every xattr of the entry itself, as getfattr -e hex would show them. */
function xattrs (p) {
  try {
    return nativeCore().xattrs(p).map(([n, v]) => `${n}=0x${v.toString('hex')}`).sort().join(';')
  } catch { return '' }
}

/** `exact`: also owners, device numbers and hard-link
 *  groups (each multiply linked file names the first path of its group). */
export function snapshot (root, { withXattrs = true, exact = false } = {}) {
  const out = {}
  const groups = new Map()
  // dirFd: the directory holding `name` (bytes; the root's own path with -1).
  const walk = (rel, dirFd, name) => {
    const abs = dirFd < 0 ? name : Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), name])
    const st = lstatSync(abs, { bigint: exact })
    if (exact) {
      let extra = ` owner ${st.uid}:${st.gid}`
      if (st.isCharacterDevice() || st.isBlockDevice()) extra += ` rdev ${st.rdev}`
      if (!st.isDirectory() && st.nlink > 1n) {
        const first = groups.get(st.ino) ?? rel
        groups.set(st.ino, first)
        extra += ` links ${st.nlink} group ${first}`
      }
      out[(rel || '.') + ' +'] = extra
    }
    const mode = (Number(st.mode) & 0o7777).toString(8)
    let e
    if (st.isSymbolicLink()) e = `link ${nameFromBytes(readlinkSync(abs, { encoding: 'buffer' }))}`
    else if (st.isDirectory()) e = `dir ${mode}`
    else if (st.isFile()) e = `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16)}`
    else e = `other ${st.mode.toString(8)}`
    if (st.isDirectory()) {
      const fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
      try {
        if (withXattrs) { const x = xattrs(`/proc/self/fd/${fd}/.`); if (x) e += ` xattr[${x}]` }
        out[rel || '.'] = e
        const names = readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' }).map(b => [nameFromBytes(b), b]).sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
        for (const [n, b] of names) walk(rel ? `${rel}/${n}` : n, fd, b)
      } finally { closeSync(fd) }
      return
    }
    if (withXattrs && !st.isSymbolicLink()) { const x = xattrs(abs); if (x) e += ` xattr[${x}]` }
    out[rel || '.'] = e
  }
  walk('', -1, root)
  return out
}
