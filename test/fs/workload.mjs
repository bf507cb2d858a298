// A seeded mixed workload over a mounted group: writes at random offsets,
// truncates, renames, unlinks, hard links, symlinks, chmod, xattrs, mkdir /
// rmdir trees, image writes. Errors that a real application would meet
// (ENOENT after its own rename, say) are part of the workload: they must
// not be recorded, and the replay must still match.
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'

export function rng (seed) {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

export function runWorkload (mnt, dirVols, { steps = 400, seed = 1, image = null, imageSize = 0 } = {}) {
  const r = rng(seed)
  const pick = a => a[Math.floor(r() * a.length)]
  const names = ['a', 'b', 'c', 'd', 'sub/x', 'sub/y', 'sub/deep/z', 'e f', 'ünï']
  const counts = {}
  for (let i = 0; i < steps; i++) {
    const vol = pick(dirVols)
    const p = n => join(mnt, vol, n)
    const op = pick(['write', 'write', 'write', 'write', 'truncate', 'rename', 'unlink', 'link', 'symlink', 'chmod', 'xattr', 'mkdir', 'rmtree', 'image', 'image'])
    try {
      switch (op) {
        case 'write': {
          const n = pick(names)
          fs.mkdirSync(join(p(n), '..'), { recursive: true })
          const fd = fs.openSync(p(n), fs.existsSync(p(n)) ? 'r+' : 'w')
          const len = 1 + Math.floor(r() * 200_000)
          fs.writeSync(fd, Buffer.alloc(len, Math.floor(r() * 256)), 0, len, Math.floor(r() * 300_000))
          fs.closeSync(fd)
          break
        }
        case 'truncate': fs.truncateSync(p(pick(names)), Math.floor(r() * 250_000)); break
        case 'rename': fs.renameSync(p(pick(names)), p(pick(names))); break
        case 'unlink': fs.unlinkSync(p(pick(names))); break
        case 'link': fs.linkSync(p(pick(names)), p(pick(names))); break
        case 'symlink': fs.symlinkSync(pick(['a', '../b', 'nowhere', 'sub/x']), p(pick(names) + '.lnk')); break
        case 'chmod': fs.chmodSync(p(pick(names)), pick([0o600, 0o644, 0o755, 0o400])); break
        case 'xattr': {
          const args = r() < 0.7 ? ['-n', `user.k${Math.floor(r() * 3)}`, '-v', `v${Math.floor(r() * 1000)}`, p(pick(names))] : ['-x', `user.k${Math.floor(r() * 3)}`, p(pick(names))]
          execFileSync('setfattr', args, { stdio: 'ignore' })
          break
        }
        case 'mkdir': fs.mkdirSync(p(`t${Math.floor(r() * 3)}/u${Math.floor(r() * 3)}`), { recursive: true }); break
        case 'rmtree': fs.rmSync(p(pick(['sub', 't0', 't1', 't2'])), { recursive: true }); break
        case 'image': {
          if (!image) break
          const fd = fs.openSync(join(mnt, image), 'r+')
          const len = 4096 * (1 + Math.floor(r() * 16))
          const off = 4096 * Math.floor(r() * ((imageSize - len) / 4096))
          fs.writeSync(fd, Buffer.alloc(len, Math.floor(r() * 256)), 0, len, off)
          fs.closeSync(fd)
          break
        }
      }
      counts[op] = (counts[op] ?? 0) + 1
    } catch {
      counts[`${op}-failed`] = (counts[`${op}-failed`] ?? 0) + 1
    }
  }
  return counts
}
