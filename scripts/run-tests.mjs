#!/usr/bin/env node
// Test runner for replfs: one `node` child process per test file, a hard timeout each.
//
//   node scripts/run-tests.mjs [--root DIR] [--timeout SECONDS] [--bail] [FILTER ...]
//
// - Files: test/**/*.test.mjs (or under --root / $REPLFS_TEST_ROOT), sorted by path;
//   FILTERs keep files whose relative path contains any of them.
// - Timeout per file: 300 s ($REPLFS_TEST_TIMEOUT), overridden by a comment
//   `// timeout: N` (seconds) in the first 5 lines of the file; --timeout S overrides both.
// - Each child runs detached, in its own process group; on timeout the whole group gets
//   SIGKILL. After a file exits, what it left in its group gets SIGTERM, then SIGKILL.
// - Children get REPLFS_TEST_TMP: the directory under which they put their temp dirs and
//   mounts. It is /tmp/replfs-test/run-<pid> (one per run, so runs by different people
//   on one machine do not touch each other's mounts) unless REPLFS_TEST_TMP is set.
//   After every file, scripts/fuse-unstick.sh frees mounts left under it; at the end it
//   is removed (REPLFS_TEST_KEEP=1 keeps it).
// - Counting: uvu prints `Total:`, `Passed:`, `Skipped:` at exit; failed = Total - Passed.
//   A file that exits non-zero, times out, or prints no summary counts at least one
//   failure; without a summary, the suites' `(passed / total)` lines give partial counts.
// - Output: each file's output is streamed in its own section; then a table per file;
//   the last line is exactly `N passed, N failed`. Exit 1 if anything failed.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const unstickScript = path.join(repo, 'scripts', 'fuse-unstick.sh');
const TMP_BASE = '/tmp/replfs-test';

// ---- arguments ----------------------------------------------------------------------
function usage(msg) {
  if (msg) process.stderr.write(`run-tests: ${msg}\n`);
  process.stderr.write('usage: node scripts/run-tests.mjs [--root DIR] [--timeout SECONDS] [--bail] [FILTER ...]\n');
  process.exit(2);
}
let testRoot = process.env.REPLFS_TEST_ROOT ? path.resolve(process.env.REPLFS_TEST_ROOT) : path.join(repo, 'test');
let defaultTimeoutS = Number(process.env.REPLFS_TEST_TIMEOUT || 300);
let timeoutForced = false; // --timeout on the command line wins over a file's own
let bail = false;
const filters = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--root') { if (!argv[i + 1]) usage('--root needs a directory'); testRoot = path.resolve(argv[++i]); }
  else if (a === '--timeout') { defaultTimeoutS = Number(argv[++i]); timeoutForced = true; }
  else if (a === '--bail') bail = true;
  else if (a === '-h' || a === '--help') usage();
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else filters.push(a);
}
if (!Number.isFinite(defaultTimeoutS) || defaultTimeoutS <= 0) usage('timeout must be a positive number of seconds');

// ---- discovery ----------------------------------------------------------------------
function findTests(dir) {
  const out = [];
  const walk = (d) => {
    let entries;
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.test.mjs')) out.push(p);
    }
  };
  walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function timeoutFor(file) {
  let head = '';
  try {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    head = buf.subarray(0, n).toString('utf8').split('\n').slice(0, 5).join('\n');
  } catch { /* unreadable: the child will say so */ }
  const m = /\/\/\s*timeout:\s*(\d+(?:\.\d+)?)/.exec(head);
  return m && !timeoutForced ? Number(m[1]) : defaultTimeoutS;
}

// ---- output parsing -----------------------------------------------------------------
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;
const strip = (s) => s.replace(ANSI, '');

class SummaryParser {
  constructor() { this.partial = ''; this.total = null; this.passed = null; this.skipped = null; this.suitePassed = 0; this.suiteTotal = 0; }
  push(chunk) {
    const text = this.partial + chunk;
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    if (this.partial.length > 65536) this.partial = this.partial.slice(-65536);
    for (const l of lines) this.line(l);
  }
  end() { if (this.partial) this.line(this.partial); this.partial = ''; }
  line(raw) {
    const l = strip(raw);
    let m;
    if ((m = /^\s*Total:\s+(\d+)\s*$/.exec(l))) this.total = Number(m[1]);
    else if ((m = /^\s*Passed:\s+(\d+)\s*$/.exec(l))) this.passed = Number(m[1]);
    else if ((m = /^\s*Skipped:\s+(\d+)\s*$/.exec(l))) this.skipped = Number(m[1]);
    else if ((m = /\((\d+) \/ (\d+)\)\s*$/.exec(l))) { this.suitePassed += Number(m[1]); this.suiteTotal += Number(m[2]); }
  }
  get hasSummary() { return this.total !== null && this.passed !== null; }
}

// ---- process helpers ----------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function groupAlive(pgid) {
  try { process.kill(-pgid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}
function killGroup(pgid, sig) {
  try { process.kill(-pgid, sig); } catch { /* already gone */ }
}
async function reapGroup(pgid) {
  if (!groupAlive(pgid)) return false;
  killGroup(pgid, 'SIGTERM');
  for (let i = 0; i < 30 && groupAlive(pgid); i++) await sleep(100);
  if (groupAlive(pgid)) killGroup(pgid, 'SIGKILL');
  return true;
}

function unstick(prefix) {
  const r = spawnSync('bash', [unstickScript, prefix, '--quiet'], { encoding: 'utf8', timeout: 60_000 });
  return ((r.stdout || '') + (r.stderr || '')).trim();
}

function mountsUnder(prefix) {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m && (m === prefix || m.startsWith(prefix + '/')));
  } catch { return []; }
}

function removeTree(dir) {
  if (mountsUnder(dir).length) return false;
  const r = spawnSync('rm', ['-rf', '--one-file-system', dir], { timeout: 120_000 });
  return r.status === 0;
}

// Directories of earlier runs whose runner is gone (killed before it could clean up).
function pruneStaleRuns() {
  let names = [];
  try { names = fs.readdirSync(TMP_BASE); } catch { return; }
  for (const n of names) {
    const m = /^run-(\d+)$/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try { process.kill(pid, 0); } catch (e) { alive = e.code === 'EPERM'; }
    if (alive) continue;
    const dir = path.join(TMP_BASE, n);
    unstick(dir);
    removeTree(dir);
  }
}

// ---- running one file ---------------------------------------------------------------
const out = (s) => process.stdout.write(s);
let current = null; // { pgid } of the file running now, for SIGINT

function runFile(file, rel, timeoutS, env) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const parser = new SummaryParser();
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    current = { pgid: child.pid };
    let timedOut = false;
    let exitCode = null, exitSignal = null, spawnError = null;
    let openStreams = 2, exited = false, finished = false;

    const onData = (chunk) => { const s = chunk.toString('utf8'); out(s); parser.push(s); };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);

    const timer = setTimeout(() => {
      timedOut = true;
      out(`\n[run-tests] TIMEOUT: ${rel} exceeded ${timeoutS} s; killing its process group\n`);
      killGroup(child.pid, 'SIGKILL');
    }, timeoutS * 1000);

    const finish = async () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      parser.end();
      const leftovers = child.pid ? await reapGroup(child.pid) : false;
      current = null;
      resolve({
        exitCode, exitSignal, timedOut, spawnError, parser, leftovers,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    };
    const streamDone = () => { if (--openStreams === 0 && exited) finish(); };
    child.stdout.on('close', streamDone);
    child.stderr.on('close', streamDone);
    child.on('error', (e) => { spawnError = e; exited = true; finish(); });
    child.on('exit', (code, sig) => {
      exitCode = code; exitSignal = sig; exited = true;
      if (openStreams === 0) { finish(); return; }
      // Descendants still hold the pipes: give them a moment, then stop them and go on.
      setTimeout(async () => {
        if (finished) return;
        await reapGroup(child.pid);
        setTimeout(() => { child.stdout.destroy(); child.stderr.destroy(); finish(); }, 1000);
      }, 2000);
    });
  });
}

function judge(r) {
  const p = r.parser;
  let passed, failed, skipped, status;
  if (p.hasSummary) {
    passed = p.passed;
    failed = Math.max(0, p.total - p.passed);
    skipped = p.skipped ?? 0;
  } else {
    passed = p.suitePassed;
    failed = p.suiteTotal - p.suitePassed;
    skipped = 0;
  }
  if (r.spawnError) status = 'ERROR';
  else if (r.timedOut) status = 'TIMEOUT';
  else if (r.exitSignal) status = `KILLED(${r.exitSignal})`;
  else if (r.exitCode !== 0) status = failed > 0 ? 'FAIL' : `EXIT(${r.exitCode})`;
  else if (!p.hasSummary) status = 'NO-SUMMARY';
  else status = failed > 0 ? 'FAIL' : 'ok';
  if (status !== 'ok' && failed === 0) failed = 1;
  return { passed, failed, skipped, status };
}

// ---- main ---------------------------------------------------------------------------
const fmtDur = (ms) => (ms >= 60000 ? `${Math.floor(ms / 60000)}m${((ms % 60000) / 1000).toFixed(1)}s` : `${(ms / 1000).toFixed(2)}s`);
const rule = (title) => `\n${'━'.repeat(3)} ${title} ${'━'.repeat(Math.max(3, 76 - title.length))}\n`;

async function main() {
  let files = findTests(testRoot);
  const relOf = (f) => path.relative(repo, f).startsWith('..') ? path.relative(testRoot, f) : path.relative(repo, f);
  if (filters.length) files = files.filter((f) => filters.some((s) => relOf(f).includes(s)));

  let tmp = process.env.REPLFS_TEST_TMP;
  const ownTmp = !tmp;
  if (ownTmp) {
    fs.mkdirSync(TMP_BASE, { recursive: true });
    pruneStaleRuns();
    tmp = path.join(TMP_BASE, `run-${process.pid}`);
  }
  tmp = path.resolve(tmp);
  fs.mkdirSync(tmp, { recursive: true });

  const env = { ...process.env, REPLFS_TEST_TMP: tmp };
  if (process.stdout.isTTY && !('NO_COLOR' in process.env)) env.FORCE_COLOR = env.FORCE_COLOR ?? '1';

  out(`run-tests: ${files.length} file(s) under ${path.relative(repo, testRoot) || '.'}${filters.length ? ` matching ${filters.join(', ')}` : ''}; REPLFS_TEST_TMP=${tmp}\n`);

  const onSignal = (sig) => {
    out(`\n[run-tests] ${sig}: stopping\n`);
    if (current) killGroup(current.pgid, 'SIGKILL');
    unstick(tmp);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results = [];
  for (const file of files) {
    const rel = relOf(file);
    const timeoutS = timeoutFor(file);
    out(rule(`${rel} (timeout ${timeoutS}s)`));
    const r = await runFile(file, rel, timeoutS, env);
    const u = unstick(tmp);
    const j = judge(r);
    if (r.spawnError) out(`[run-tests] could not start ${rel}: ${r.spawnError.message}\n`);
    if (r.leftovers) out(`[run-tests] ${rel} left processes behind in its group; stopped them\n`);
    if (u) out(`[run-tests] ${rel} left mounts behind:\n${u.replace(/^/gm, '  ')}\n`);
    if (j.status !== 'ok') out(`[run-tests] ${rel}: ${j.status} (exit ${r.exitSignal ?? r.exitCode})\n`);
    results.push({ rel, ...j, ms: r.ms });
    if (bail && j.failed) break;
  }

  // Summary table.
  const passed = results.reduce((a, r) => a + r.passed, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  const w = Math.max(4, ...results.map((r) => r.rel.length));
  const row = (c) => `${c[0].padEnd(w)}  ${c[1].padEnd(12)}${c[2].padStart(7)}${c[3].padStart(7)}${c[4].padStart(8)}${c[5].padStart(11)}`;
  out(rule('summary'));
  out(row(['file', 'result', 'passed', 'failed', 'skipped', 'time']) + '\n');
  for (const r of results) out(row([r.rel, r.status, String(r.passed), String(r.failed), String(r.skipped), fmtDur(r.ms)]) + '\n');
  const totalMs = results.reduce((a, r) => a + r.ms, 0);
  out(row(['total', '', String(passed), String(failed), String(results.reduce((a, r) => a + r.skipped, 0)), fmtDur(totalMs)]) + '\n');

  if (ownTmp && process.env.REPLFS_TEST_KEEP !== '1') {
    if (!removeTree(tmp)) out(`[run-tests] kept ${tmp} (mounts still present or not removable)\n`);
  }
  if (filters.length && files.length === 0) out('run-tests: no test file matched the filters\n');
  out(`\n${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 || (filters.length && files.length === 0) ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`run-tests: internal error: ${e?.stack ?? e}\n`);
  process.stdout.write('\n0 passed, 1 failed\n');
  process.exit(1);
});
