#!/usr/bin/env node
// table.mjs RESULTS.tsv [--quick]: prints the benchmark tables (one column per target, then
// ratios against bindfs and between the replfs modes), the spread of the rounds, the thread
// sweep, and issue 7's targets, met or missed. RESULTS.tsv rows: target <TAB> metric <TAB> value.
import fs from 'node:fs';

const file = process.argv[2];
const quick = process.argv.includes('--quick');
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
// Several rounds give several rows per target/metric: the median of the numeric ones
// (or, when none is numeric, the last value, such as ERR or timeout).
const all = new Map();
for (const [t, m, v] of rows) { const k = `${t}/${m}`; if (!all.has(k)) all.set(k, []); all.get(k).push(v); }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const val = new Map(); // `${target}/${metric}` -> string
const nums = new Map(); // `${target}/${metric}` -> numeric values of the rounds
for (const [k, vs] of all) {
  const numeric = vs.filter((v) => v !== '' && Number.isFinite(Number(v))).map(Number);
  nums.set(k, numeric);
  val.set(k, numeric.length ? String(median(numeric)) : vs[vs.length - 1]);
}
const num = (t, m) => { const v = Number(val.get(`${t}/${m}`)); return val.has(`${t}/${m}`) && Number.isFinite(v) ? v : null; };

const MAIN = ['direct', 'bindfs', 'bindfs-mt', 'replfs', 'replfs-nopoll', 'replfs-async', 'replfs-async-nopoll', 'replfs-sync'];
const targets = MAIN.filter((t) => rows.some((r) => r[0] === t));
const sweep = [...new Set(rows.map((r) => r[0]).filter((t) => /^replfs-t\d+$/.test(t)))]
  .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));

// metric, label, kind: 'up' = higher is better, 'cost' = lower is better (both get ratios),
// 'down' = lower is better (no ratios), 'info'
const METRICS = [
  ['seq_mibs', 'seq write 1 MiB, 1 writer (MiB/s)', 'up'],
  ['seq4_mibs', 'seq write 1 MiB, 4 writers (MiB/s)', 'up'],
  ['rand_iops', 'rand write 4 KiB QD1, 1 writer (IOPS)', 'up'],
  ['rand4_iops', 'rand write 4 KiB QD1, 4 writers (IOPS)', 'up'],
  ['small_fps', 'tar -x /usr/include + sync (files/s)', 'up'],
  ['small_s', 'tar -x /usr/include + sync (s)', 'down'],
  ['sqlite_normal_tps', 'SQLite WAL synchronous=NORMAL (tx/s)', 'up'],
  ['sqlite_full_tps', 'SQLite WAL synchronous=FULL (tx/s)', 'up'],
  ['cpu_seq_s_gib', 'server CPU per GiB, seq 1 writer (s/GiB)', 'cost'],
  ['cpu_seq_s_gib_secondary', 'secondary CPU per GiB, seq 1 writer (s/GiB)', 'down'],
  ['cpu_big_s_gib', 'server CPU per GiB, the big seq write (s/GiB)', 'cost'],
  ['rss_big_mibs', 'the big seq write, fresh mount (MiB/s)', 'up'],
  ['rss_4g_mb', 'peak RSS through the big seq write (MiB)', 'down'],
  ['rss_run_mb', 'peak RSS over all workloads (MiB)', 'cost'],
  ['lag_seq_s', 'replica identical after seq write ends (s)', 'down'],
  ['lag_seq_s_upper', '  same, to the end of the full comparison (s)', 'down'],
  ['lag_small_s', 'replica identical after tar ends (s)', 'down'],
  ['lag_small_s_upper', '  same, to the end of the full comparison (s)', 'down'],
  ['rsync_seq_s', 'rsync -a of the seq file to a copy (s)', 'down'],
  ['rsync_small_s', 'rsync -a of the tar tree to a copy (s)', 'down'],
  ['ident_seq_s', 'seq: workload until identical copy (s)', 'down'],
  ['ident_small_s', 'tar: workload until identical copy (s)', 'down'],
];
const label = (m) => METRICS.find((x) => x[0] === m)?.[1] ?? m;

const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
const fmtNum = (v) => {
  if (v === undefined) return '-';
  const n = Number(v);
  if (!Number.isFinite(n)) return v;
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
};
const fmtRatio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`);

function table(header, body) {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...body.map(line)];
}

const out = [];
// --- main table ---
const ratioCols = [
  ['replfs', 'bindfs', 'plain/bindfs'], ['replfs', 'bindfs-mt', 'plain/bindfs-mt'],
  ['replfs-async', 'replfs', 'async/plain'], ['replfs-sync', 'replfs-async', 'sync/async'], ['replfs-sync', 'bindfs', 'sync/bindfs'],
  ['replfs-nopoll', 'bindfs', 'nopoll/bindfs'], ['replfs', 'replfs-nopoll', 'plain poll/nopoll'], ['replfs-async', 'replfs-async-nopoll', 'async poll/nopoll'],
].filter(([a, b]) => targets.includes(a) && targets.includes(b));
const present = METRICS.filter(([m]) => targets.some((t) => val.has(`${t}/${m}`)));
const short = (t) => t.replace(/^replfs-/, '');
out.push(...table(['metric (median of rounds)', ...targets.map(short), ...ratioCols.map((c) => c[2])], present.map(([m, lab, kind]) => [
  lab,
  ...targets.map((t) => fmtNum(val.get(`${t}/${m}`))),
  ...ratioCols.map(([a, b]) => (kind === 'up' || kind === 'cost' ? fmtRatio(ratio(num(a, m), num(b, m))) : '')),
])));

// --- spread of the rounds ---
const spreadTargets = [...targets, ...sweep];
const multi = present.filter(([m, , kind]) => kind === 'up' && spreadTargets.some((t) => (nums.get(`${t}/${m}`) ?? []).length > 1));
if (multi.length) {
  out.push('', 'spread of the rounds, (max - min) / median, and the number of rounds:');
  const cell = (t, m) => {
    const xs = nums.get(`${t}/${m}`) ?? [];
    if (xs.length < 2) return xs.length ? 'n=1' : '-';
    const md = median(xs);
    return md ? `${(100 * (Math.max(...xs) - Math.min(...xs)) / md).toFixed(0)}% n=${xs.length}` : '-';
  };
  out.push(...table(['metric', ...spreadTargets.map(short)], multi.map(([m, lab]) => [lab, ...spreadTargets.map((t) => cell(t, m))])));
}

// --- thread sweep ---
let bestLine = null;
if (sweep.length) {
  out.push('', 'FUSE reader threads of the core (REPLFS_THREADS), plain mount:');
  const ms = ['rand_iops', 'small_fps', 'rss_run_mb'].filter((m) => sweep.some((t) => val.has(`${t}/${m}`)));
  const base = ['bindfs', 'bindfs-mt'].filter((t) => targets.includes(t));
  const rc = targets.includes('bindfs') ? sweep.map((t) => [t, `${short(t)}/bindfs`]) : [];
  out.push(...table(['metric (median of rounds)', ...sweep.map(short), ...base, ...rc.map((c) => c[1])], ms.map((m) => [
    label(m), ...sweep.map((t) => fmtNum(val.get(`${t}/${m}`))), ...base.map((t) => fmtNum(val.get(`${t}/${m}`))),
    ...rc.map(([t]) => (m === 'rss_run_mb' ? '' : fmtRatio(ratio(num(t, m), num('bindfs', m))))),
  ])));
  const best = (m) => { let b = null; for (const t of sweep) { const v = num(t, m); if (v !== null && (b === null || v > b[1])) b = [t, v]; } return b; };
  const br = best('rand_iops'), bs = best('small_fps');
  const parts = [];
  if (br) parts.push(`4 KiB QD1: ${short(br[0])}`);
  if (bs) parts.push(`tar: ${short(bs[0])}`);
  // one count for both: the one with the best product of the two ratios to the best of each
  if (br && bs) {
    let b = null;
    for (const t of sweep) {
      const r = num(t, 'rand_iops'), s = num(t, 'small_fps');
      if (r === null || s === null) continue;
      const score = Math.sqrt((r / br[1]) * (s / bs[1]));
      if (b === null || score > b[1]) b = [t, score];
    }
    if (b) parts.push(`both (geometric mean of the two, relative to the best of each): ${short(b[0])} (${(100 * b[1]).toFixed(0)}%)`);
  }
  bestLine = `best thread count: ${parts.join('; ')}`;
  out.push(bestLine);
}

// --- issue 7's targets ---
const r = (a, b, m) => () => ratio(num(a, m), num(b, m));
const atLeast = (x) => (v) => v >= x;
const goals = [
  ['plain vs bindfs, 4 KiB random QD1 >= 1.5x', r('replfs', 'bindfs', 'rand_iops'), atLeast(1.5), fmtRatio],
  ['plain vs bindfs, SQLite WAL NORMAL >= 1.5x', r('replfs', 'bindfs', 'sqlite_normal_tps'), atLeast(1.5), fmtRatio],
  ['plain vs bindfs, seq 1 MiB >= 1.0x', r('replfs', 'bindfs', 'seq_mibs'), atLeast(1.0), fmtRatio],
  ['plain vs bindfs, SQLite WAL FULL >= 1.0x', r('replfs', 'bindfs', 'sqlite_full_tps'), atLeast(1.0), fmtRatio],
  ['plain vs bindfs, tar -x + sync >= 1.0x', r('replfs', 'bindfs', 'small_fps'), atLeast(1.0), fmtRatio],
  ['async vs plain, 4 KiB random QD1 >= 0.9x', r('replfs-async', 'replfs', 'rand_iops'), atLeast(0.9), fmtRatio],
  ['async vs plain, SQLite WAL NORMAL >= 0.9x', r('replfs-async', 'replfs', 'sqlite_normal_tps'), atLeast(0.9), fmtRatio],
  ['async vs plain, seq 1 MiB >= 0.9x', r('replfs-async', 'replfs', 'seq_mibs'), atLeast(0.9), fmtRatio],
  ['async vs plain, SQLite WAL FULL >= 0.9x', r('replfs-async', 'replfs', 'sqlite_full_tps'), atLeast(0.9), fmtRatio],
  ['async vs plain, tar -x + sync >= 0.9x', r('replfs-async', 'replfs', 'small_fps'), atLeast(0.9), fmtRatio],
  ['sync vs async, 4 writers 4 KiB random >= 0.6x', r('replfs-sync', 'replfs-async', 'rand4_iops'), atLeast(0.6), fmtRatio],
  ['sync SQLite WAL FULL vs bindfs >= 0.5x', r('replfs-sync', 'bindfs', 'sqlite_full_tps'), atLeast(0.5), fmtRatio],
  [`async: replica identical <= 0.5 s after a ${quick ? 'shortened (BENCH_QUICK)' : '1 GiB'} write ends`, () => num('replfs-async', 'lag_seq_s'), (v) => v <= 0.5, (v) => `${v.toFixed(2)} s`],
  [`peak RSS < 150 MiB through a ${quick ? 'shortened (BENCH_QUICK)' : '4 GiB'} write`, () => num('replfs', 'rss_4g_mb'), (v) => v < 150, (v) => `${v.toFixed(0)} MiB`],
];
const goalLines = [];
for (const [name, get, ok, fmt] of goals) {
  const v = get();
  if (v === null) continue;
  goalLines.push(`  ${ok(v) ? 'met   ' : 'MISSED'}  ${name}: ${fmt(v)}`);
}
const cpuB = num('bindfs', 'cpu_seq_s_gib'), cpuR = num('replfs', 'cpu_seq_s_gib');
if (cpuR !== null) {
  const extra = ['bindfs-mt', 'replfs-async', 'replfs-sync'].filter((t) => num(t, 'cpu_seq_s_gib') !== null)
    .map((t) => `${short(t)} ${num(t, 'cpu_seq_s_gib').toFixed(2)}`).join(', ');
  goalLines.push(`  report  CPU s per GiB written sequentially (server, all threads): plain ${cpuR.toFixed(2)} vs bindfs ${cpuB === null ? '-' : cpuB.toFixed(2)}` +
    (cpuB ? ` (${fmtRatio(cpuR / cpuB)})` : '') + (extra ? `; ${extra}` : ''));
}
const known = new Set(METRICS.map((m) => m[0]));
const bounded = rows.filter(([, m]) => m.endsWith('_bounded'));
if (bounded.length) {
  out.push('', 'stopped at the time bound (BENCH_BOUND), rate over the work done (done/all, per round):');
  const by = new Map();
  for (const [t, m, v] of bounded) { const k = `${t}: ${m.replace(/_bounded$/, '')}`; by.set(k, [...(by.get(k) ?? []), v]); }
  for (const [k, vs] of by) out.push(`  ${k} ${vs.join(', ')}`);
}
const errors = rows.filter(([, m, v]) => !known.has(m) && !m.endsWith('_bounded') && !Number.isFinite(Number(v)));
const bad = rows.filter(([, m, v]) => known.has(m) && !Number.isFinite(Number(v)));
if (errors.length || bad.length) {
  out.push('');
  out.push('failed steps (see the logs under the run dir):');
  for (const [t, m, v] of [...errors, ...bad]) out.push(`  ${t}: ${m.replace(/_failed$/, '')} ${v}`);
}
if (goalLines.length) { out.push(''); out.push("issue 7's targets (medians):"); out.push(...goalLines); }
process.stdout.write(out.join('\n') + '\n');
