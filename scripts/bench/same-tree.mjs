#!/usr/bin/env node
// same-tree.mjs A B: exit 0 if the trees under A and B are identical in names, types,
// sizes, symlink targets and file contents; exit 1 (with the first difference on stderr
// when --verbose) otherwise. Cheap checks first (names, sizes) so a lagging replica is
// rejected without reading its data. Used by bench.sh to time replication lag.
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const [a, b] = args.filter((x) => x !== '--verbose');
if (!a || !b) { process.stderr.write('usage: same-tree.mjs A B [--verbose]\n'); process.exit(2); }

function differ(msg) { if (verbose) process.stderr.write(`same-tree: ${msg}\n`); process.exit(1); }

function list(root) {
  const out = new Map();
  const walk = (rel) => {
    const abs = path.join(root, rel);
    let st;
    try { st = fs.lstatSync(abs); } catch { differ(`cannot stat ${abs}`); }
    const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
    out.set(rel, { type, size: type === 'f' ? st.size : 0, link: type === 'l' ? fs.readlinkSync(abs) : '' });
    if (type === 'd') for (const n of fs.readdirSync(abs).sort()) walk(path.join(rel, n));
  };
  walk('.');
  return out;
}

const la = list(a), lb = list(b);
if (la.size !== lb.size) differ(`entry count ${la.size} != ${lb.size}`);
for (const [rel, ea] of la) {
  const eb = lb.get(rel);
  if (!eb) differ(`${rel} missing in ${b}`);
  if (ea.type !== eb.type || ea.size !== eb.size || ea.link !== eb.link) differ(`${rel} differs in type, size or link`);
}
const bufA = Buffer.alloc(1 << 20), bufB = Buffer.alloc(1 << 20);
for (const [rel, ea] of la) {
  if (ea.type !== 'f' || ea.size === 0) continue;
  const fa = fs.openSync(path.join(a, rel), 'r'), fb = fs.openSync(path.join(b, rel), 'r');
  try {
    for (let off = 0; off < ea.size;) {
      const na = fs.readSync(fa, bufA, 0, bufA.length, off);
      const nb = fs.readSync(fb, bufB, 0, bufB.length, off);
      if (na !== nb || bufA.compare(bufB, 0, nb, 0, na) !== 0) differ(`${rel} content differs near offset ${off}`);
      if (na === 0) break;
      off += na;
    }
  } finally { fs.closeSync(fa); fs.closeSync(fb); }
}
process.exit(0);
