#!/usr/bin/env node
// Patches fuse-native 2.2.6's C source and rebuilds its addon with node-gyp
// against the headers it bundles (fuse-shared-library). Run by setup after
// `npm ci`; idempotent. Why: native-notes/utimens.md.
//   1. utimens passed atime twice (mtime was lost): `touch -m`, tar, rsync
//      and cp -p all set the wrong modification time.
//   2. UTIME_NOW / UTIME_OMIT reached JS as garbage times; now NOW becomes
//      the current time and OMIT a sentinel (2^64-1) that fs/ops.ts keeps.
// node-gyp-build loads build/Release/fuse.node before the prebuilds.
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const dir = dirname(require.resolve('fuse-native/package.json'))
const src = join(dir, 'fuse-native.c')
const marker = '/* replfs-patch-1 */'
let c = readFileSync(src, 'utf8')

if (!c.includes(marker)) {
  const swaps = [
    [`  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)`,
    `  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5) ${marker}`],
    [`  l->atime = timespec_to_uint64(&tv[0]);
  l->mtime = timespec_to_uint64(&tv[1]);`,
    `  l->atime = utimens_arg_to_uint64(&tv[0]);
  l->mtime = utimens_arg_to_uint64(&tv[1]);`],
    [`static void populate_stat (`,
    `// replfs: UTIME_NOW is "now" (taken here, once); UTIME_OMIT becomes
// UINT64_MAX, which JS sees as 2^64-1 and treats as "leave unchanged".
static uint64_t utimens_arg_to_uint64 (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return UINT64_MAX;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return timespec_to_uint64(&now);
  }
  return timespec_to_uint64(ts);
}

static void populate_stat (`]
  ]
  for (const [from, to] of swaps) {
    if (!c.includes(from)) throw new Error(`fuse-native.c does not contain the expected text:\n${from}`)
    c = c.replace(from, to)
  }
  if (!c.includes('#include <time.h>')) c = '#include <time.h>\n#include <sys/stat.h>\n' + c
  writeFileSync(src, c)
  console.log('patched', src)
}

if (!existsSync(join(dir, 'build', 'Release', 'fuse.node')) || process.argv.includes('--rebuild')) {
  const gyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  // Node's own headers are on the machine (/usr/include/node): build
  // against them, never download them.
  const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node.h') ? '/usr' : '')
  const args = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])]
  const cmd = existsSync(gyp) ? [process.execPath, [gyp, ...args]] : ['npx', ['--no-install', 'node-gyp', ...args]]
  execFileSync(cmd[0], cmd[1], { cwd: dir, stdio: 'inherit' })
}
const Fuse = require('fuse-native')
if (typeof Fuse !== 'function') throw new Error('fuse-native did not load')
console.log('fuse-native addon:', join(dir, 'build', 'Release', 'fuse.node'))
