#!/usr/bin/env node
// table.mjs RESULTS.tsv [--quick]: prints the benchmark table (one column per target,
// then ratios against bindfs and sync/async) and the goals from the issues, met or not.
// RESULTS.tsv rows: target <TAB> metric <TAB> value.
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
for (const [k, vs] of all) {
  const numeric = vs.filter((v) => v !== '' && Number.isFinite(Number(v))).map(Number);
  val.set(k, numeric.length ? String(median(numeric)) : vs[vs.length - 1]);
}
const num = (t, m) => { const v = Number(val.get(`${t}/${m}`)); return Number.isFinite(v) ? v : null; };

const ORDER = ['direct', 'bindfs', 'replfs', 'replfs-async', 'replfs-sync'];
const targets = ORDER.filter((t) => rows.some((r) => r[0] === t));

// metric, label, kind: 'up' = higher is better (ratios shown), 'down' = lower is better, 'info'
const METRICS = [
  ['seq_mibs', 'seq write 1 MiB psync (MiB/s)', 'up'],
  ['rand_iops', 'rand write 4 KiB psync QD1 (IOPS)', 'up'],
  ['rand4_iops', 'rand write 4 KiB psync, 4 writers (IOPS)', 'up'],
  ['small_fps', 'small files: tar -x /usr/include + sync (files/s)', 'up'],
  ['small_s', 'small files: tar -x /usr/include + sync (s)', 'down'],
  ['sqlite_normal_tps', 'SQLite WAL synchronous=NORMAL (tx/s)', 'up'],
  ['sqlite_full_tps', 'SQLite WAL synchronous=FULL (tx/s)', 'up'],
  ['rss_4g_mb', 'replfs peak RSS through the big seq write (MiB)', 'down'],
  ['rss_run_mb', 'replfs peak RSS over all workloads (MiB)', 'down'],
  ['lag_seq_s', 'replica identical after seq write ends (s)', 'down'],
  ['lag_small_s', 'replica identical after small files end (s)', 'down'],
  ['rsync_seq_s', 'rsync -a of the seq file to a copy (s)', 'down'],
  ['rsync_small_s', 'rsync -a of the small files to a copy (s)', 'down'],
  ['ident_seq_s', 'seq: workload until identical copy (s)', 'down'],
  ['ident_small_s', 'small files: workload until identical copy (s)', 'down'],
];
const present = METRICS.filter(([m]) => targets.some((t) => val.has(`${t}/${m}`)));

const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
const fmtNum = (v) => {
  if (v === undefined) return '-';
  const n = Number(v);
  if (!Number.isFinite(n)) return v;
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
};
const fmtRatio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`);

const ratioCols = [];
if (targets.includes('bindfs')) {
  for (const t of ['replfs', 'replfs-async', 'replfs-sync']) if (targets.includes(t)) ratioCols.push([t, 'bindfs', `${t.replace('replfs-', '')}/bindfs`]);
}
if (targets.includes('replfs-async') && targets.includes('replfs-sync')) ratioCols.push(['replfs-sync', 'replfs-async', 'sync/async']);

const header = ['metric', ...targets, ...ratioCols.map((c) => c[2])];
const body = present.map(([m, label, kind]) => [
  label,
  ...targets.map((t) => fmtNum(val.get(`${t}/${m}`))),
  ...ratioCols.map(([a, b]) => (kind === 'up' ? fmtRatio(ratio(num(a, m), num(b, m))) : '')),
]);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
const line = (cells) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
const out = [];
out.push(line(header));
out.push('|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
for (const r of body) out.push(line(r));

// Goals from issue 3 and issue 4, checked where the figures exist.
const goals = [
  ['seq replfs >= 0.9x bindfs', () => ratio(num('replfs', 'seq_mibs'), num('bindfs', 'seq_mibs')), (r) => r >= 0.9, fmtRatio],
  ['4 KiB random IOPS replfs >= 0.9x bindfs', () => ratio(num('replfs', 'rand_iops'), num('bindfs', 'rand_iops')), (r) => r >= 0.9, fmtRatio],
  ['small files replfs >= 0.8x bindfs', () => ratio(num('replfs', 'small_fps'), num('bindfs', 'small_fps')), (r) => r >= 0.8, fmtRatio],
  ['SQLite NORMAL replfs >= 0.9x bindfs', () => ratio(num('replfs', 'sqlite_normal_tps'), num('bindfs', 'sqlite_normal_tps')), (r) => r >= 0.9, fmtRatio],
  ['SQLite FULL replfs >= 0.9x bindfs', () => ratio(num('replfs', 'sqlite_full_tps'), num('bindfs', 'sqlite_full_tps')), (r) => r >= 0.9, fmtRatio],
  [`peak RSS < 200 MB through a ${quick ? 'shortened (BENCH_QUICK)' : '4 GiB'} write`, () => num('replfs', 'rss_4g_mb'), (v) => v * 1048576 < 200e6, (v) => `${v.toFixed(0)} MiB`],
  ['async seq >= 0.8x bindfs', () => ratio(num('replfs-async', 'seq_mibs'), num('bindfs', 'seq_mibs')), (r) => r >= 0.8, fmtRatio],
  ['async replica identical within 2 s of seq end', () => num('replfs-async', 'lag_seq_s'), (v) => v <= 2, (v) => `${v.toFixed(2)} s`],
  ['sync 4 KiB random IOPS (4 writers) >= 0.5x async', () => ratio(num('replfs-sync', 'rand4_iops'), num('replfs-async', 'rand4_iops')), (r) => r >= 0.5, fmtRatio],
  ['SQLite FULL sync >= 0.5x bindfs', () => ratio(num('replfs-sync', 'sqlite_full_tps'), num('bindfs', 'sqlite_full_tps')), (r) => r >= 0.5, fmtRatio],
  ['small files: async replica identical sooner than workload + rsync', () => ratio(num('replfs-async', 'ident_small_s'), num('direct', 'ident_small_s')), (r) => r < 1, (r) => `${r.toFixed(2)}x of direct+rsync`],
];
const goalLines = [];
for (const [name, get, ok, fmt] of goals) {
  const v = get();
  if (v === null) continue;
  goalLines.push(`  ${ok(v) ? 'met   ' : 'MISSED'}  ${name}: ${fmt(v)}`);
}
const known = new Set(METRICS.map((m) => m[0]));
const errors = rows.filter(([, m, v]) => !known.has(m) && !Number.isFinite(Number(v)));
if (errors.length) {
  out.push('');
  out.push('failed steps (see the logs under the run dir):');
  for (const [t, m, v] of errors) out.push(`  ${t}: ${m.replace(/_failed$/, '')} ${v}`);
}
if (goalLines.length) { out.push(''); out.push('goals:'); out.push(...goalLines); }
process.stdout.write(out.join('\n') + '\n');
