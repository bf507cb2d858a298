// Snapshot of a directory tree for comparisons: names, types, content
// hashes, modes, link targets, xattrs (what "identical" means in tests).
// Trees can be deeper than PATH_MAX: each directory is held by an fd and
// its entries named through /proc/self/fd/<fd>/<name>, a short path.
import { readdirSync, lstatSync, readFileSync, readlinkSync, openSync, closeSync, constants } from 'node:fs'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'

/** getfattr of `name` in the directory open as `dirFd` (handed to it as its fd 3). */
function xattrs (dirFd, name) {
  try {
    const out = execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', '-e', 'hex', `/proc/self/fd/3/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore', dirFd] })
    return out.split('\n').filter(l => l && !l.startsWith('#')).sort().join(';')
  } catch { return '' }
}

function xattrsOfPath (p) {
  const fd = openSync(p.replace(/\/[^/]*$/, '') || '/', constants.O_RDONLY | constants.O_DIRECTORY)
  try { return xattrs(fd, p.slice(p.lastIndexOf('/') + 1)) } finally { closeSync(fd) }
}

/** `exact`: also owners, device numbers and hard-link
 *  groups (each multiply linked file names the first path of its group). */
export function snapshot (root, { withXattrs = true, exact = false } = {}) {
  const out = {}
  const groups = new Map()
  // dirFd: the directory holding `name` (-1 with the root's own path).
  const walk = (rel, dirFd, name) => {
    const abs = dirFd < 0 ? name : `/proc/self/fd/${dirFd}/${name}`
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
    if (st.isSymbolicLink()) e = `link ${readlinkSync(abs)}`
    else if (st.isDirectory()) e = `dir ${mode}`
    else if (st.isFile()) e = `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16)}`
    else e = `other ${st.mode.toString(8)}`
    if (st.isDirectory()) {
      const fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
      try {
        if (withXattrs) { const x = xattrs(fd, '.'); if (x) e += ` xattr[${x}]` }
        out[rel || '.'] = e
        for (const n of readdirSync(`/proc/self/fd/${fd}`).sort()) walk(rel ? `${rel}/${n}` : n, fd, n)
      } finally { closeSync(fd) }
      return
    }
    if (withXattrs && !st.isSymbolicLink()) {
      const x = dirFd < 0 ? xattrsOfPath(abs) : xattrs(dirFd, name)
      if (x) e += ` xattr[${x}]`
    }
    out[rel || '.'] = e
  }
  walk('', -1, root)
  return out
}
