// Snapshot of a directory tree for comparisons: names, types, content
// hashes, modes, link targets, xattrs (what "identical" means in tests).
import { readdirSync, lstatSync, readFileSync, readlinkSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'

function xattrs (p) {
  try {
    const out = execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', '-e', 'hex', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return out.split('\n').filter(l => l && !l.startsWith('#')).sort().join(';')
  } catch { return '' }
}

/** `exact`: also owners, device numbers and hard-link
 *  groups (each multiply linked file names the first path of its group). */
export function snapshot (root, { withXattrs = true, exact = false } = {}) {
  const out = {}
  const groups = new Map()
  const walk = (rel) => {
    const abs = rel ? join(root, rel) : root
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
    if (withXattrs && !st.isSymbolicLink()) { const x = xattrs(abs); if (x) e += ` xattr[${x}]` }
    out[rel || '.'] = e
    if (st.isDirectory()) for (const n of readdirSync(abs).sort()) walk(rel ? `${rel}/${n}` : n)
  }
  walk('')
  return out
}
