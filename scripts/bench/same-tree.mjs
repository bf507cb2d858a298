#!/usr/bin/env node
// same-tree.mjs A B [--verbose]: exit 0 if the trees under A and B are identical in names,
// types, sizes, symlink targets and file contents; exit 1 (with the first difference on
// stderr when --verbose) otherwise. Cheap checks first (names, sizes) so a lagging replica
// is rejected without reading its data.
//
// same-tree.mjs A B --wait T_END [--limit S]: polls (every ~20 ms, in this one process) until
// B is identical to A, then prints "LAG UPPER": LAG is the seconds from T_END (epoch seconds,
// as `date +%s.%N`) to the start of the first cheap check that matched (names, types, sizes,
// links, and the last 64 KiB of every file), UPPER to the end of the full content comparison
// that confirmed it. The secondary applies the journal in order, so once the last bytes of a
// sequentially written file are there, all of it is: LAG is when it became identical, UPPER
// the conservative bound that includes reading both copies. If the full comparison finds a
// difference, polling goes on. Exit 1 (printing "timeout") after S seconds (default 300).
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const flag = (name) => { const i = args.indexOf(name); if (i < 0) return null; const v = args[i + 1]; args.splice(i, 2); return v; };
const verbose = args.includes('--verbose');
const waitFrom = flag('--wait');
const limit = Number(flag('--limit') ?? 300);
const [a, b] = args.filter((x) => x !== '--verbose');
if (!a || !b) { process.stderr.write('usage: same-tree.mjs A B [--verbose] [--wait T_END [--limit S]]\n'); process.exit(2); }

class Differ extends Error {}
function differ(msg) { throw new Differ(msg); }

function list(root) {
  const out = new Map();
  const walk = (rel) => {
    const abs = path.join(root, rel);
    let st;
    try { st = fs.lstatSync(abs); } catch { differ(`cannot stat ${abs}`); }
    const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
    out.set(rel, { type, size: type === 'f' ? st.size : 0, link: type === 'l' ? fs.readlinkSync(abs) : '' });
    if (type === 'd') {
      let names;
      try { names = fs.readdirSync(abs); } catch { differ(`cannot list ${abs}`); }
      for (const n of names.sort()) walk(path.join(rel, n));
    }
  };
  walk('.');
  return out;
}

const bufA = Buffer.alloc(1 << 20), bufB = Buffer.alloc(1 << 20);
function sameContent(rel, size, from) {
  const fa = fs.openSync(path.join(a, rel), 'r'), fb = fs.openSync(path.join(b, rel), 'r');
  try {
    for (let off = from; off < size;) {
      const na = fs.readSync(fa, bufA, 0, bufA.length, off);
      const nb = fs.readSync(fb, bufB, 0, bufB.length, off);
      if (na !== nb || bufA.compare(bufB, 0, nb, 0, na) !== 0) differ(`${rel} content differs near offset ${off}`);
      if (na === 0) break;
      off += na;
    }
  } finally { fs.closeSync(fa); fs.closeSync(fb); }
}

// tailOnly: compare only the last 64 KiB of each file (the cheap check).
function check(tailOnly) {
  const la = list(a), lb = list(b);
  if (la.size !== lb.size) differ(`entry count ${la.size} != ${lb.size}`);
  for (const [rel, ea] of la) {
    const eb = lb.get(rel);
    if (!eb) differ(`${rel} missing in ${b}`);
    if (ea.type !== eb.type || ea.size !== eb.size || ea.link !== eb.link) differ(`${rel} differs in type, size or link`);
  }
  for (const [rel, ea] of la) {
    if (ea.type !== 'f' || ea.size === 0) continue;
    sameContent(rel, ea.size, tailOnly ? Math.max(0, ea.size - 65536) : 0);
  }
}

function tryCheck(tailOnly) {
  try { check(tailOnly); return true; } catch (e) {
    if (!(e instanceof Differ)) throw e;
    if (verbose) process.stderr.write(`same-tree: ${e.message}\n`);
    return false;
  }
}

if (waitFrom === null) process.exit(tryCheck(false) ? 0 : 1);

const tEnd = Number(waitFrom);
const nowS = () => Date.now() / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tStart = nowS();
while (true) {
  const t0 = nowS();
  if (tryCheck(true) && tryCheck(false)) {
    process.stdout.write(`${(t0 - tEnd).toFixed(3)} ${(nowS() - tEnd).toFixed(3)}\n`);
    process.exit(0);
  }
  if (nowS() - tStart > limit) {
    tryCheck(false);
    process.stdout.write('timeout\n');
    process.exit(1);
  }
  await sleep(20);
}
