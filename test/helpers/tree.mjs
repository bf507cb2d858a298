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

export function snapshot (root, { withXattrs = true } = {}) {
  const out = {}
  const walk = (rel) => {
    const abs = rel ? join(root, rel) : root
    const st = lstatSync(abs)
    const mode = (st.mode & 0o7777).toString(8)
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
