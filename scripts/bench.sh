#!/usr/bin/env bash
# replfs benchmarks: the same workloads, in one run, interleaved over rounds, against
#   direct        the backing directory written directly (no FUSE)
#   bindfs        bindfs -o big_writes,max_write=131072 (a C FUSE passthrough, libfuse 2,
#                 single-threaded: its default; the baseline every ratio is taken against)
#   bindfs-mt     the same with --multithreaded
#   replfs        node dist/cli.js mount SRC MNT --state STATE (capture + journal, no peer)
#   replfs-async  the same with a secondary on loopback: --peer 127.0.0.1:PORT --mode async
#   replfs-sync   the same with --mode sync
#   replfs-nopoll, replfs-async-nopoll   those two with --poll-us 0 (a reader that sleeps
#                 in read(/dev/fuse) at once after each reply: src/native/reader_wait.c)
#   replfs-tN     the plain mount with REPLFS_THREADS=N (N in BENCH_THREADS, default "1 2 4"):
#                 the FUSE reader thread sweep, on 4 KiB QD1 and tar only
#   failback      issue 8's figures, after the others (scripts/bench/failback.mjs, on one image
#                 volume, 1 GiB, BENCH_QUICK 128 MiB): failback resync bytes sent / bytes changed
#                 and its time next to rsync --inplace --no-whole-file; replfs verify MiB/s next
#                 to sha256sum; 4 KiB random write IOPS with and without a periodic verify.
#                 Runs when `verify` and `promote` exist; its figures are appended to results.txt
# The replfs targets use the native core (REPLFS_CORE=native unless set otherwise; REPLFS_THREADS
# from the environment, the core's default when unset). Replicating targets run only when
# `node dist/cli.js serve --help` succeeds; replfs targets only when `mount --help` does.
#
# Usage: bash scripts/bench.sh            (or: make bench)
# Environment:
#   BENCH_QUICK=1          smoke run (smaller sizes, 5 s time bounds, 1 round; a few minutes)
#   BENCH_DIR=DIR          work dir (default /tmp/replfs-bench); results in DIR/results.txt
#   BENCH_TARGETS="..."    subset of: direct bindfs bindfs-mt replfs replfs-async replfs-sync sweep
#                          replfs-nopoll replfs-async-nopoll
#                          failback ("sweep" = the replfs-tN targets)
#   BENCH_FB_SIZE, BENCH_FB_ROUNDS, BENCH_FB_FIO_S, BENCH_FB_PORT: see scripts/bench/failback.mjs
#                          (its two ports default to the last two of BENCH_PORTS)
#   BENCH_WORKLOADS="seq,sqlite FULL"   a subset of the workloads, comma-separated (seq seq4 rand
#                          rand4 small, sqlite NORMAL, sqlite FULL); default all
#   BENCH_THREADS="1 2 4"  thread counts of the sweep
#   BENCH_ROUNDS=N         rounds, targets interleaved (order rotated each round); medians shown
#                          (default 3, BENCH_QUICK 1)
#   BENCH_SEQ_SIZE, BENCH_RAND_SIZE, BENCH_RAND_RUNTIME, BENCH_SQLITE_TX, BENCH_RSS_SIZE
#   BENCH_BOUND=S          time bound of a workload (default 20, BENCH_QUICK 15): the rate of a
#                          workload stopped there is over the work done (marked "bounded")
#   BENCH_PORTS=LO-HI      ports for the secondaries (default 17400-17499)
#   BENCH_KEEP=1           keep the data and state dirs of the run
# Machines are noisy: compare the ratios within one run, not absolute figures across runs.
# Benchmarks assert nothing about timings: a figure that misses a goal is reported as such.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLI=${REPLFS_CLI:-$ROOT/dist/cli.js}
WORK=${BENCH_DIR:-/tmp/replfs-bench}
RUN=$WORK/run
RESULTS_TSV=$RUN/results.tsv
PIDS=()

# shellcheck source=bench/lib.sh
. "$ROOT/scripts/bench/lib.sh"

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  SEQ_SIZE=${BENCH_SEQ_SIZE:-256m}; RAND_SIZE=${BENCH_RAND_SIZE:-64m}; RAND_RUNTIME=${BENCH_RAND_RUNTIME:-5}
  SQLITE_TX=${BENCH_SQLITE_TX:-300}; RSS_SIZE=${BENCH_RSS_SIZE:-512m}; TAR_SRC=include/linux
  ROUNDS=${BENCH_ROUNDS:-1}
else
  SEQ_SIZE=${BENCH_SEQ_SIZE:-1g}; RAND_SIZE=${BENCH_RAND_SIZE:-256m}; RAND_RUNTIME=${BENCH_RAND_RUNTIME:-10}
  SQLITE_TX=${BENCH_SQLITE_TX:-2000}; RSS_SIZE=${BENCH_RSS_SIZE:-4g}; TAR_SRC=include
  ROUNDS=${BENCH_ROUNDS:-3}
fi
THREADS_SWEEP=${BENCH_THREADS:-1 2 4}
export REPLFS_CORE=${REPLFS_CORE:-native}
WL_TIMEOUT=${BENCH_WORKLOAD_TIMEOUT:-900}   # hard bound per workload command (s)
# Time bound of one workload (s): a workload still running then is stopped and its rate is
# taken over the work done (seq: fio --runtime; tar, SQLite: the files and rows there at the
# bound). The slow modes (sync replication) would otherwise take most of the run.
BOUND=${BENCH_BOUND:-$([ "$QUICK" = 1 ] && echo 15 || echo 20)}
LAG_LIMIT=${BENCH_LAG_LIMIT:-60}  # give up waiting for an identical replica (s)
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-60}    # wait for `ready` / `listening` (s)

# --- preconditions -------------------------------------------------------------------
for c in fio bindfs sqlite3 rsync tar fusermount mountpoint node awk; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found: run 'make setup' (scripts/setup.sh) first"
done
[ -c /dev/fuse ] || die "/dev/fuse missing"
case "$WORK" in /?*) ;; *) die "BENCH_DIR must be an absolute path" ;; esac

# --- cleanup on any exit -------------------------------------------------------------
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Interrupted: the table of what was measured so far.
  if [ "${REPORTED:-1}" = 0 ]; then report "interrupted, partial" || true; fi
  for p in "${PIDS[@]}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    [ -n "$p" ] || continue
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for m in "$RUN"/*/mnt; do [ -d "$m" ] && unmount_dir "$m"; done
  bash "$ROOT/scripts/fuse-unstick.sh" "$WORK" --quiet || true
  if [ "${BENCH_KEEP:-0}" != 1 ] && [ -d "$RUN" ]; then
    for d in "$RUN"/*/; do
      [ -d "$d" ] || continue
      case "$d" in */logs/|*/out/) continue ;; esac
      rm -rf --one-file-system "$d" 2>/dev/null || true
    done
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- which targets -------------------------------------------------------------------
# A verb exists when `VERB --help` succeeds and prints that verb's own usage (commander
# answers `UNKNOWN --help` with the program's help and status 0).
has_verb() {
  local h
  [ -f "$CLI" ] || return 1
  h=$(node "$CLI" "$1" --help 2>/dev/null) || return 1
  grep -Eq "^Usage: .*\b$1\b" <<< "$h"
}
have_replfs=0; have_repl=0
if has_verb mount; then have_replfs=1; fi
if [ $have_replfs = 1 ] && has_verb serve; then have_repl=1; fi
TARGETS=${BENCH_TARGETS:-direct bindfs bindfs-mt replfs replfs-async replfs-sync sweep failback}
selected=(); run_failback=0
for t in $TARGETS; do
  case "$t" in
    failback)
      if [ $have_repl = 1 ] && has_verb verify && has_verb promote; then run_failback=1
      else log "skipping failback: '$CLI verify --help' or 'promote --help' does not work yet"; fi ;;
    direct|bindfs|bindfs-mt) selected+=("$t") ;;
    replfs|sweep|replfs-t[0-9]*)
      if [ $have_replfs = 1 ]; then
        if [ "$t" = sweep ]; then for n in $THREADS_SWEEP; do selected+=("replfs-t$n"); done; else selected+=("$t"); fi
      else log "skipping $t: '$CLI mount --help' does not work yet (build the CLI first)"; fi ;;
    replfs-nopoll)
      if [ $have_replfs = 1 ]; then selected+=("$t"); else log "skipping $t: '$CLI mount --help' does not work yet"; fi ;;
    replfs-async|replfs-sync|replfs-async-nopoll)
      if [ $have_repl = 1 ]; then selected+=("$t"); else log "skipping $t: '$CLI serve --help' does not work yet (replication not built)"; fi ;;
    *) die "unknown target $t" ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || [ $run_failback = 1 ] || die "no target to run"

# --- work dir ------------------------------------------------------------------------
mkdir -p "$WORK"
bash "$ROOT/scripts/fuse-unstick.sh" "$RUN" --quiet || true
rm -rf --one-file-system "$RUN"
mkdir -p "$RUN/logs" "$RUN/out"
: > "$RESULTS_TSV"

TARBALL=$WORK/usr-$(echo "$TAR_SRC" | tr / -).tar
if [ ! -s "$TARBALL" ] && [ ${#selected[@]} -gt 0 ]; then
  log "creating $TARBALL from /usr/$TAR_SRC (once)"
  tar -cf "$TARBALL.tmp" -C /usr "$TAR_SRC" 2>/dev/null && mv "$TARBALL.tmp" "$TARBALL"
fi
TAR_ENTRIES=0; TAR_MB=0
if [ -s "$TARBALL" ]; then
  TAR_ENTRIES=$(tar -tf "$TARBALL" | wc -l)
  TAR_MB=$(calc "$(stat -c %s "$TARBALL") / 1048576")
fi

# SQL scripts: one single-row transaction per line, N of them.
gen_sql() {
  local mode=$1 f=$RUN/out/sqlite-$1.sql
  {
    echo "PRAGMA synchronous=$mode;"
    awk -v n="$SQLITE_TX" 'BEGIN { for (i = 1; i <= n; i++) printf "BEGIN; INSERT INTO t(v) VALUES (hex(randomblob(32))); COMMIT;\n" }'
  } > "$f"
}
gen_sql NORMAL; gen_sql FULL

log "work dir $RUN; quick=$QUICK; rounds $ROUNDS; seq $SEQ_SIZE, rand $RAND_SIZE x ${RAND_RUNTIME}s, sqlite $SQLITE_TX tx, rss $RSS_SIZE, tarball $TAR_ENTRIES entries ($TAR_MB MiB)"
log "REPLFS_CORE=$REPLFS_CORE REPLFS_THREADS=${REPLFS_THREADS:-(core default)}"
log "targets: ${selected[*]}"

# --- targets: start / stop ------------------------------------------------------------
# After target_start: TDIR = where workloads write; TSRC = backing dir of TDIR;
# TPID = the FUSE server's pid (replfs mount or bindfs; empty for direct);
# TREPLICA = secondary's copy of TSRC (or empty); SPID = the secondary's pid.
TDIR=; TSRC=; TPID=; TREPLICA=; SPID=; SECRET_ARGS=(); START_N=0

start_replfs() { # NAME BASE EXTRA_ARGS...
  local name=$1 base=$2; shift 2
  mkdir -p "$base/data" "$base/mnt" "$base/state"
  START_N=$((START_N + 1))
  local logf=$RUN/logs/$name-mount-$START_N.log   # one per start: `ready` must be this start's
  node "$CLI" mount "$base/data" "$base/mnt" --state "$base/state" "$@" >> "$logf" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  if ! wait_for_line "$logf" 'ready' "$TPID" "$READY_TIMEOUT"; then
    sed 's/^/    | /' "$logf" >&2; return 1
  fi
  TSRC=$base/data
  # One directory volume: its content at the mount root, or (if the CLI shows volumes as
  # top-level entries) in MNT/data. The source is empty, so the two cannot be confused.
  if [ -d "$base/mnt/data" ]; then TDIR=$base/mnt/data; else TDIR=$base/mnt; fi
}

start_secondary() { # NAME BASE -> PORT in SECONDARY_ADDR
  local name=$1 base=$2 port
  mkdir -p "$base/replica" "$base/state2"
  port=$(free_port) || return 1
  START_N=$((START_N + 1))
  local logf=$RUN/logs/$name-serve-$START_N.log
  # One shared secret for both sides (the CLI requires one, loopback included).
  SECRET_ARGS=()
  if node "$CLI" serve --help 2>/dev/null | grep -q -- --secret-file; then
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$base/secret"; echo >> "$base/secret")
    SECRET_ARGS=(--secret-file "$base/secret")
  fi
  node "$CLI" serve --listen "127.0.0.1:$port" --state "$base/state2" --volume "data=$base/replica" "${SECRET_ARGS[@]}" >> "$logf" 2>&1 &
  SPID=$!; PIDS+=("$SPID")
  if ! wait_for_line "$logf" 'listening' "$SPID" "$READY_TIMEOUT"; then
    sed 's/^/    | /' "$logf" >&2; return 1
  fi
  SECONDARY_ADDR=127.0.0.1:$port
  TREPLICA=$base/replica
}

start_bindfs() { # BASE EXTRA_ARGS... : in the foreground (-f) so that its pid is ours
  local base=$1; shift
  mkdir -p "$base/data" "$base/mnt"
  bindfs -f "$@" -o big_writes,max_write=131072 "$base/data" "$base/mnt" >> "$RUN/logs/bindfs.log" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  local i=0
  until mountpoint -q "$base/mnt"; do
    kill -0 "$TPID" 2>/dev/null && [ $i -lt 100 ] || { log "bindfs did not mount"; cat "$RUN/logs/bindfs.log" >&2; return 1; }
    sleep 0.1; i=$((i + 1))
  done
  TDIR=$base/mnt; TSRC=$base/data
}

target_start() {
  local t=$1 base=$RUN/$1
  TDIR=; TSRC=; TPID=; TREPLICA=; SPID=
  mkdir -p "$base"
  case "$t" in
    direct) mkdir -p "$base/data"; TDIR=$base/data; TSRC=$TDIR ;;
    bindfs) start_bindfs "$base" ;;
    bindfs-mt) start_bindfs "$base" --multithreaded ;;
    replfs) start_replfs "$t" "$base" ;;
    replfs-nopoll) start_replfs "$t" "$base" --poll-us 0 ;;
    replfs-t*) REPLFS_THREADS=${t#replfs-t} start_replfs "$t" "$base" ;;
    replfs-async|replfs-sync)
      start_secondary "$t" "$base" || return 1
      start_replfs "$t" "$base" --peer "$SECONDARY_ADDR" --mode "${t#replfs-}" "${SECRET_ARGS[@]}" ;;
    replfs-async-nopoll)
      start_secondary "$t" "$base" || return 1
      start_replfs "$t" "$base" --peer "$SECONDARY_ADDR" --mode async --poll-us 0 "${SECRET_ARGS[@]}" ;;
  esac
}

target_stop() {
  local t=$1 base=$RUN/$1
  case "$t" in
    direct) ;;
    bindfs*)
      unmount_dir "$base/mnt"
      [ -z "$TPID" ] || stop_pid "$TPID" "$t" 30 ;;
    replfs*)
      if [ -n "$TPID" ]; then
        stop_pid "$TPID" "$t mount" 120
      fi
      unmount_dir "$base/mnt"
      [ -z "$SPID" ] || stop_pid "$SPID" "$t serve" 60 ;;
  esac
  TPID=; SPID=
}

target_alive() {
  if [ -n "$TPID" ] && ! kill -0 "$TPID" 2>/dev/null; then log "$1: the FUSE server process died"; return 1; fi
  if [ -n "$SPID" ] && ! kill -0 "$SPID" 2>/dev/null; then log "$1: replfs secondary died"; return 1; fi
  return 0
}

# --- workloads -------------------------------------------------------------------------
# Each: wl_X TARGET; records its metrics; returns non-zero on failure.
fio_run() { # TARGET NAME fio-args...
  local t=$1 n=$2; shift 2
  timeout -k 10 "$WL_TIMEOUT" fio --name="$n" --ioengine=psync --fallocate=none \
    --output-format=json --output="$RUN/out/fio-$n-$t.json" "$@" > "$RUN/logs/fio-$n-$t.log" 2>&1 \
    || { log "fio $n on $t failed:"; sed 's/^/    | /' "$RUN/logs/fio-$n-$t.log" >&2; return 1; }
}

# lag_until_identical TARGET SUBDIR T_END METRIC: waits until the replica's SUBDIR equals the
# primary's; records METRIC (seconds from T_END until the replica was identical, see
# same-tree.mjs --wait) and METRIC_upper (to the end of the full comparison that confirmed it).
lag_until_identical() {
  local t=$1 sub=$2 t_end=$3 metric=$4 out
  out=$(node "$ROOT/scripts/bench/same-tree.mjs" "$TSRC/$sub" "$TREPLICA/$sub" --wait "$t_end" --limit "$LAG_LIMIT" --verbose 2>"$RUN/logs/lag-$t-$sub.log") || {
    tail -n 1 "$RUN/logs/lag-$t-$sub.log" >&2; record "$t" "$metric" timeout; return 1; }
  record "$t" "$metric" "${out% *}"
  record "$t" "${metric}_upper" "${out#* }"
  echo "${out% *}"
}

# rsync_copy TARGET SUBDIR METRIC: on the direct target, time rsync -a of SUBDIR to a copy.
rsync_copy() {
  local t=$1 sub=$2 metric=$3 copy=$RUN/rsync-copy t0 t1
  mkdir -p "$copy"
  t0=$(now)
  rsync -a "$TSRC/$sub/" "$copy/$sub/" || { log "rsync on $t failed"; return 1; }
  t1=$(now)
  record "$t" "$metric" "$(elapsed "$t0" "$t1")"
  rm -rf "$copy"
  elapsed "$t0" "$t1"
}

# cpu_mark: CPU seconds so far of the FUSE server and of the secondary ("S1 S2")
cpu_mark() { echo "$([ -n "$TPID" ] && cpu_s "$TPID" || echo 0) $([ -n "$SPID" ] && cpu_s "$SPID" || echo 0)"; }
# cpu_record TARGET METRIC "MARK_BEFORE" BYTES: CPU seconds per GiB since the mark (after `sync`)
cpu_record() {
  local t=$1 m=$2 before=$3 bytes=$4 after gib
  [ -n "$TPID" ] || return 0
  sync
  after=$(cpu_mark); gib=$(calc "$bytes / 1073741824")
  record "$t" "$m" "$(calc "(${after% *} - ${before% *}) / $gib")"
  [ -z "$SPID" ] || record "$t" "${m}_secondary" "$(calc "(${after#* } - ${before#* }) / $gib")"
}

wl_seq() { # one writer, 1 MiB writes, final fsync; replica lag; CPU per GiB
  local t=$1 t0 t1 secs extra cpu0 written
  mkdir -p "$TDIR/seq"
  cpu0=$(cpu_mark)
  t0=$(now)
  fio_run "$t" seq --filename="$TDIR/seq/seq.dat" --rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1 --runtime="$BOUND" || return 1
  t1=$(now); secs=$(elapsed "$t0" "$t1")
  record "$t" seq_mibs "$(fio_get "$RUN/out/fio-seq-$t.json" bw)"
  written=$(fio_get "$RUN/out/fio-seq-$t.json" bytes)
  [ "$written" -ge "$(size_bytes "$SEQ_SIZE")" ] || record "$t" seq_bounded "$((written / 1048576))/$(( $(size_bytes "$SEQ_SIZE") / 1048576 ))MiB"
  if [ -n "$TREPLICA" ]; then
    extra=$(lag_until_identical "$t" seq "$t1" lag_seq_s) && record "$t" ident_seq_s "$(calc "$secs + $extra")"
  elif [ "$t" = direct ]; then
    extra=$(rsync_copy "$t" seq rsync_seq_s) && record "$t" ident_seq_s "$(calc "$secs + $extra")"
  fi
  cpu_record "$t" cpu_seq_s_gib "$cpu0" "$written"
  rm -rf "$TDIR/seq"
}

wl_seq4() { # 4 writers, one file each, 1 MiB writes, final fsync each; SEQ_SIZE in all
  local t=$1 per
  mkdir -p "$TDIR/seq4"
  per=$(( $(size_bytes "$SEQ_SIZE") / 4 ))
  fio_run "$t" seq4 --directory="$TDIR/seq4" --rw=write --bs=1M --numjobs=4 --group_reporting \
    --size="$per" --end_fsync=1 --runtime="$BOUND" || return 1
  record "$t" seq4_mibs "$(fio_get "$RUN/out/fio-seq4-$t.json" bw)"
  local w4; w4=$(fio_get "$RUN/out/fio-seq4-$t.json" bytes)
  [ "$w4" -ge $((per * 4)) ] || record "$t" seq4_bounded "$((w4 / 1048576))/$((per * 4 / 1048576))MiB"
  rm -rf "$TDIR/seq4"
}

# layout TARGET NAME FILE... : writes the files in full with 1 MiB writes (untimed), so the
# random-write runs overwrite allocated blocks and fio does not lay them out with 4 KiB writes.
layout() {
  local t=$1 n=$2 f; shift 2
  for f in "$@"; do
    fio_run "$t" "$n-layout" --filename="$f" --rw=write --bs=1M --size="$LAYOUT_SIZE" || return 1
  done
}

wl_rand() {
  local t=$1
  mkdir -p "$TDIR/rand"
  LAYOUT_SIZE=$RAND_SIZE layout "$t" rand "$TDIR/rand/rand.dat" || return 1
  fio_run "$t" rand --filename="$TDIR/rand/rand.dat" --rw=randwrite --bs=4k --iodepth=1 --size="$RAND_SIZE" \
    --overwrite=1 --time_based --runtime="$RAND_RUNTIME" || return 1
  record "$t" rand_iops "$(fio_get "$RUN/out/fio-rand-$t.json" iops)"
  rm -rf "$TDIR/rand"
}

wl_rand4() { # 4 writers, one file each (fio names them rand4.J.0)
  local t=$1 per
  mkdir -p "$TDIR/rand4"
  per=$(( $(size_bytes "$RAND_SIZE") / 4 ))
  LAYOUT_SIZE=$per layout "$t" rand4 "$TDIR"/rand4/rand4.{0,1,2,3}.0 || return 1
  fio_run "$t" rand4 --directory="$TDIR/rand4" --rw=randwrite --bs=4k --iodepth=1 --numjobs=4 --group_reporting \
    --size="$per" --overwrite=1 --time_based --runtime="$RAND_RUNTIME" || return 1
  record "$t" rand4_iops "$(fio_get "$RUN/out/fio-rand4-$t.json" iops)"
  rm -rf "$TDIR/rand4"
}

wl_small() {
  local t=$1 t0 t1 secs extra
  mkdir -p "$TDIR/small"
  local rc=0 done=$TAR_ENTRIES
  t0=$(now)
  timeout -k 10 "$BOUND" tar -xf "$TARBALL" -C "$TDIR/small" || rc=$?
  sync
  t1=$(now); secs=$(elapsed "$t0" "$t1")
  if [ $rc = 124 ]; then   # stopped at the bound: the rate over the entries there
    done=$(( $(find "$TDIR/small" -mindepth 1 | wc -l) ))
    record "$t" small_bounded "$done/$TAR_ENTRIES"
  elif [ $rc != 0 ]; then log "tar -x on $t failed ($rc)"; return 1
  else record "$t" small_s "$secs"; fi
  record "$t" small_fps "$(rate "$done" "$secs")"
  if [ -n "$TREPLICA" ]; then
    extra=$(lag_until_identical "$t" small "$t1" lag_small_s) && record "$t" ident_small_s "$(calc "$secs + $extra")"
  elif [ "$t" = direct ]; then
    extra=$(rsync_copy "$t" small rsync_small_s) && record "$t" ident_small_s "$(calc "$secs + $extra")"
  fi
  rm -rf "$TDIR/small"
}

wl_sqlite() { # TARGET NORMAL|FULL
  local t=$1 mode=$2 d=$TDIR/sqlite-$2 t0 t1 n
  mkdir -p "$d"
  sqlite3 "$d/bench.db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);' > /dev/null \
    || { log "sqlite3 setup on $t failed"; return 1; }
  local rc=0
  t0=$(now)
  timeout -k 10 "$BOUND" sqlite3 "$d/bench.db" < "$RUN/out/sqlite-$mode.sql" > /dev/null || rc=$?
  t1=$(now)
  [ $rc = 0 ] || [ $rc = 124 ] || { log "sqlite3 $mode on $t failed ($rc)"; return 1; }
  n=$(sqlite3 "$d/bench.db" 'SELECT count(*) FROM t;')
  if [ $rc = 124 ]; then record "$t" "sqlite_${mode,,}_bounded" "$n/$SQLITE_TX"
  elif [ "$n" != "$SQLITE_TX" ]; then log "sqlite3 on $t: $n rows, expected $SQLITE_TX"; return 1; fi
  record "$t" "sqlite_${mode,,}_tps" "$(rate "$n" "$(elapsed "$t0" "$t1")")"
  rm -rf "$d"
}

# Peak RSS through one big sequential write, on a fresh mount (no peer); its CPU per GiB too.
wl_rss() {
  local t=$1 cpu0
  mkdir -p "$TDIR/rss"
  cpu0=$(cpu_mark)
  fio_run "$t" rss --filename="$TDIR/rss/rss.dat" --rw=write --bs=1M --size="$RSS_SIZE" --end_fsync=1 || return 1
  record "$t" rss_big_mibs "$(fio_get "$RUN/out/fio-rss-$t.json" bw)"
  record "$t" rss_4g_mb "$(peak_rss_mb "$TPID")"
  cpu_record "$t" cpu_big_s_gib "$cpu0" "$(size_bytes "$RSS_SIZE")"
  rm -rf "$TDIR/rss"
}

run_wl() { # TARGET WORKLOAD [ARGS] : runs one workload, records ERR on failure
  local t=$1 w=$2; shift 2
  target_alive "$t" || { record "$t" "$w" ERR; return 1; }
  log "$t: $w $*"
  if ! "wl_$w" "$t" "$@"; then
    record "$t" "$w${1:+_$1}_failed" ERR
    target_alive "$t" || return 1
  fi
  sync
  return 0
}

# --- report (also on an interrupted run: what was measured so far) ---------------------
report() { # [NOTE]
  REPORTED=1
  [ -s "$RESULTS_TSV" ] || return 0
  local stamp; stamp=$(date -u +%Y%m%dT%H%M%SZ)
  {
    echo "replfs benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -r), $(nproc) cores, quick=$QUICK${1:+ ($1)}"
    echo "sizes: seq $SEQ_SIZE, rand $RAND_SIZE for ${RAND_RUNTIME}s, sqlite $SQLITE_TX tx, rss write $RSS_SIZE, tarball /usr/$TAR_SRC ($TAR_ENTRIES entries, $TAR_MB MiB); time bound ${BOUND}s"
    echo "targets run: ${selected[*]}; rounds: $ROUNDS, interleaved (figures are medians across rounds); total time $(elapsed "$t_start" "$(now)") s"
    echo "REPLFS_CORE=$REPLFS_CORE REPLFS_THREADS=${REPLFS_THREADS:-(core default)}; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    node "$ROOT/scripts/bench/table.mjs" "$RESULTS_TSV" $([ "$QUICK" = 1 ] && echo --quick)
  } > "$RUN/results.txt"
  cp "$RUN/results.txt" "$WORK/results-$stamp.txt"
  cp "$RUN/results.txt" "$WORK/results.txt"
  echo
  cat "$RUN/results.txt"
  echo
  log "results written to $WORK/results.txt (and results-$stamp.txt); raw figures in $RESULTS_TSV"
}

# --- main ------------------------------------------------------------------------------
t_start=$(now)
REPORTED=0
run_target() { # TARGET ROUND
  local t=$1 round=$2 ok=1 w workloads
  log "=== target $t (round $round of $ROUNDS)"
  if ! target_start "$t"; then
    log "$t: could not start; skipping its workloads"; record "$t" start ERR; target_stop "$t" || true; return
  fi
  case "$t" in
    replfs-t*) workloads=(rand small) ;;
    *) workloads=(seq seq4 rand rand4 small "sqlite NORMAL" "sqlite FULL") ;;
  esac
  [ -n "${BENCH_WORKLOADS:-}" ] && IFS=, read -ra workloads <<< "$BENCH_WORKLOADS"
  for w in "${workloads[@]}"; do
    # shellcheck disable=SC2086
    run_wl "$t" $w || { ok=0; break; }
  done
  case "$t" in replfs*|bindfs*) [ -n "$TPID" ] && kill -0 "$TPID" 2>/dev/null && record "$t" rss_run_mb "$(peak_rss_mb "$TPID")" ;; esac
  target_stop "$t"
  [ $ok = 1 ] || log "$t: stopped early (a process died); see $RUN/logs"
  rm -rf --one-file-system "${RUN:?}/$t" 2>/dev/null || true
}
n=${#selected[@]}
for round in $( [ "$n" -gt 0 ] && seq 1 "$ROUNDS"); do
  [ "$ROUNDS" = 1 ] || log "##### round $round of $ROUNDS"
  # The order rotates every round, so no target always runs right after the same one.
  for i in $(seq 0 $((n - 1))); do
    run_target "${selected[$(( (i + round - 1) % n ))]}" "$round"
  done
  if [ "$round" = 1 ] && [[ " ${selected[*]} " == *" replfs "* ]]; then
    log "=== target replfs: peak RSS through a $RSS_SIZE sequential write (fresh mount)"
    rm -rf --one-file-system "${RUN:?}/replfs"
    if target_start replfs; then run_wl replfs rss || true; fi
    target_stop replfs
    rm -rf --one-file-system "${RUN:?}/replfs" 2>/dev/null || true
  fi
done

# --- report ----------------------------------------------------------------------------
report

# --- issue 8: failback and verify (its own pair, after the others) --------------------------
if [ $run_failback = 1 ]; then
  log "=== failback and verify (scripts/bench/failback.mjs)"
  fb_hi=${BENCH_PORTS:-17400-17499}; fb_hi=${fb_hi#*-}
  fb_out=$RUN/out/failback.txt
  fb_rc=0
  BENCH_DIR=$WORK BENCH_FB_PORT=${BENCH_FB_PORT:-$((fb_hi - 1))} BENCH_QUICK=$QUICK \
    timeout -k 10 "$((WL_TIMEOUT * 3))" node "$ROOT/scripts/bench/failback.mjs" > "$fb_out" 2> "$RUN/logs/failback.log" || fb_rc=$?
  [ $fb_rc = 0 ] || log "failback benchmark failed ($fb_rc): see $fb_out and $RUN/logs/failback.log"
  { echo; cat "$fb_out"; } >> "$WORK/results.txt"
  cp "$fb_out" "$WORK/results-failback-$(date -u +%Y%m%dT%H%M%SZ).txt"
  echo; cat "$fb_out"; echo
  log "failback figures appended to $WORK/results.txt"
fi
