#!/usr/bin/env bash
# replfs benchmarks: the same workloads, in one run, against
#   direct        the backing directory written directly (no FUSE)
#   bindfs        bindfs -o big_writes,max_write=131072 (a C FUSE passthrough; the baseline)
#   replfs        node dist/cli.js mount SRC MNT --state STATE (no peer)
#   replfs-async  the same with a secondary on loopback: --peer 127.0.0.1:PORT --mode async
#   replfs-sync   the same with --mode sync
# Replicating targets run only when `node dist/cli.js serve --help` succeeds; replfs targets
# only when `node dist/cli.js mount --help` does (they are reported as skipped otherwise).
#
# Usage: bash scripts/bench.sh            (or: make bench)
# Environment:
#   BENCH_QUICK=1          shortened run (smaller sizes, shorter time bounds; < 3 minutes)
#   BENCH_DIR=DIR          work dir (default /tmp/replfs-bench); results in DIR/results.txt
#   BENCH_TARGETS="..."    subset of: direct bindfs replfs replfs-async replfs-sync
#   BENCH_SEQ_SIZE, BENCH_RAND_SIZE, BENCH_RAND_RUNTIME, BENCH_SQLITE_TX, BENCH_RSS_SIZE
#   BENCH_ROUNDS=N         run all targets N times, interleaved; the table shows medians
#   BENCH_KEEP=1           keep the data and state dirs of the run
# Machines are noisy: compare the ratios within one run, not absolute figures across runs.
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
else
  SEQ_SIZE=${BENCH_SEQ_SIZE:-1g}; RAND_SIZE=${BENCH_RAND_SIZE:-256m}; RAND_RUNTIME=${BENCH_RAND_RUNTIME:-20}
  SQLITE_TX=${BENCH_SQLITE_TX:-2000}; RSS_SIZE=${BENCH_RSS_SIZE:-4g}; TAR_SRC=include
fi
WL_TIMEOUT=${BENCH_WORKLOAD_TIMEOUT:-900}   # hard bound per workload command (s)
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
TARGETS=${BENCH_TARGETS:-direct bindfs replfs replfs-async replfs-sync}
selected=()
for t in $TARGETS; do
  case "$t" in
    direct|bindfs) selected+=("$t") ;;
    replfs) if [ $have_replfs = 1 ]; then selected+=("$t"); else log "skipping replfs: '$CLI mount --help' does not work yet (build the CLI first)"; fi ;;
    replfs-async|replfs-sync)
      if [ $have_repl = 1 ]; then selected+=("$t"); else log "skipping $t: '$CLI serve --help' does not work yet (replication not built)"; fi ;;
    *) die "unknown target $t" ;;
  esac
done

# --- work dir ------------------------------------------------------------------------
mkdir -p "$WORK"
bash "$ROOT/scripts/fuse-unstick.sh" "$RUN" --quiet || true
rm -rf --one-file-system "$RUN"
mkdir -p "$RUN/logs" "$RUN/out"
: > "$RESULTS_TSV"

TARBALL=$WORK/usr-$(echo "$TAR_SRC" | tr / -).tar
if [ ! -s "$TARBALL" ]; then
  log "creating $TARBALL from /usr/$TAR_SRC (once)"
  tar -cf "$TARBALL.tmp" -C /usr "$TAR_SRC" 2>/dev/null && mv "$TARBALL.tmp" "$TARBALL"
fi
TAR_ENTRIES=$(tar -tf "$TARBALL" | wc -l)
TAR_MB=$(calc "$(stat -c %s "$TARBALL") / 1048576")

# SQL scripts: one single-row transaction per line, N of them.
gen_sql() {
  local mode=$1 f=$RUN/out/sqlite-$1.sql
  {
    echo "PRAGMA synchronous=$mode;"
    awk -v n="$SQLITE_TX" 'BEGIN { for (i = 1; i <= n; i++) printf "BEGIN; INSERT INTO t(v) VALUES (hex(randomblob(32))); COMMIT;\n" }'
  } > "$f"
}
gen_sql NORMAL; gen_sql FULL

log "work dir $RUN; quick=$QUICK; seq $SEQ_SIZE, rand $RAND_SIZE x ${RAND_RUNTIME}s, sqlite $SQLITE_TX tx, rss $RSS_SIZE, tarball $TAR_ENTRIES entries ($TAR_MB MiB)"
log "targets: ${selected[*]}"

# --- targets: start / stop ------------------------------------------------------------
# After target_start: TDIR = where workloads write; TSRC = backing dir of TDIR;
# TPID = replfs mount pid (or empty); TREPLICA = secondary's copy of TSRC (or empty).
TDIR=; TSRC=; TPID=; TREPLICA=; SPID=

start_replfs() { # NAME BASE EXTRA_ARGS...
  local name=$1 base=$2; shift 2
  mkdir -p "$base/data" "$base/mnt" "$base/state"
  local logf=$RUN/logs/$name-mount.log
  node "$CLI" mount "$base/data" "$base/mnt" --state "$base/state" "$@" > "$logf" 2>&1 &
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
  port=$(free_port)
  local logf=$RUN/logs/$name-serve.log
  node "$CLI" serve --listen "127.0.0.1:$port" --state "$base/state2" --volume "data=$base/replica" > "$logf" 2>&1 &
  SPID=$!; PIDS+=("$SPID")
  if ! wait_for_line "$logf" 'listening' "$SPID" "$READY_TIMEOUT"; then
    sed 's/^/    | /' "$logf" >&2; return 1
  fi
  SECONDARY_ADDR=127.0.0.1:$port
  TREPLICA=$base/replica
}

target_start() {
  local t=$1 base=$RUN/$1
  TDIR=; TSRC=; TPID=; TREPLICA=; SPID=
  mkdir -p "$base"
  case "$t" in
    direct) mkdir -p "$base/data"; TDIR=$base/data; TSRC=$TDIR ;;
    bindfs)
      mkdir -p "$base/data" "$base/mnt"
      bindfs -o big_writes,max_write=131072 "$base/data" "$base/mnt" > "$RUN/logs/bindfs.log" 2>&1 || { cat "$RUN/logs/bindfs.log" >&2; return 1; }
      mountpoint -q "$base/mnt" || return 1
      TDIR=$base/mnt; TSRC=$base/data ;;
    replfs) start_replfs replfs "$base" ;;
    replfs-async|replfs-sync)
      start_secondary "$t" "$base" || return 1
      start_replfs "$t" "$base" --peer "$SECONDARY_ADDR" --mode "${t#replfs-}" ;;
  esac
}

target_stop() {
  local t=$1 base=$RUN/$1
  case "$t" in
    direct) ;;
    bindfs) unmount_dir "$base/mnt" ;;
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
  if [ -n "$TPID" ] && ! kill -0 "$TPID" 2>/dev/null; then log "$1: replfs mount process died"; return 1; fi
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

# lag_until_identical TARGET SUBDIR T_END METRIC: polls until the replica's SUBDIR equals
# the primary's; records seconds from T_END to the end of the first check that matched.
lag_until_identical() {
  local t=$1 sub=$2 t_end=$3 metric=$4 limit=300 t0
  t0=$(now)
  while :; do
    if node "$ROOT/scripts/bench/same-tree.mjs" "$TSRC/$sub" "$TREPLICA/$sub" 2>/dev/null; then
      local lag; lag=$(elapsed "$t_end" "$(now)")
      record "$t" "$metric" "$lag"; echo "$lag"; return 0
    fi
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      node "$ROOT/scripts/bench/same-tree.mjs" "$TSRC/$sub" "$TREPLICA/$sub" --verbose || true
      record "$t" "$metric" timeout; return 1
    fi
    sleep 0.05
  done
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

wl_seq() {
  local t=$1 t0 t1 secs extra
  mkdir -p "$TDIR/seq"
  t0=$(now)
  fio_run "$t" seq --filename="$TDIR/seq/seq.dat" --rw=write --bs=1M --size="$SEQ_SIZE" --end_fsync=1 || return 1
  t1=$(now); secs=$(elapsed "$t0" "$t1")
  record "$t" seq_mibs "$(fio_get "$RUN/out/fio-seq-$t.json" bw)"
  if [ -n "$TREPLICA" ]; then
    extra=$(lag_until_identical "$t" seq "$t1" lag_seq_s) && record "$t" ident_seq_s "$(calc "$secs + $extra")"
  elif [ "$t" = direct ]; then
    extra=$(rsync_copy "$t" seq rsync_seq_s) && record "$t" ident_seq_s "$(calc "$secs + $extra")"
  fi
  rm -rf "$TDIR/seq"
}

wl_rand() {
  local t=$1
  mkdir -p "$TDIR/rand"
  # --overwrite=1: fio lays the file out first (not timed), so the run overwrites allocated blocks.
  fio_run "$t" rand --filename="$TDIR/rand/rand.dat" --rw=randwrite --bs=4k --iodepth=1 --size="$RAND_SIZE" \
    --overwrite=1 --time_based --runtime="$RAND_RUNTIME" || return 1
  record "$t" rand_iops "$(fio_get "$RUN/out/fio-rand-$t.json" iops)"
  rm -rf "$TDIR/rand"
}

wl_rand4() {
  local t=$1 per
  mkdir -p "$TDIR/rand4"
  per=$(( $(size_bytes "$RAND_SIZE") / 4 ))
  fio_run "$t" rand4 --directory="$TDIR/rand4" --rw=randwrite --bs=4k --iodepth=1 --numjobs=4 --group_reporting \
    --size="$per" --overwrite=1 --time_based --runtime="$RAND_RUNTIME" || return 1
  record "$t" rand4_iops "$(fio_get "$RUN/out/fio-rand4-$t.json" iops)"
  rm -rf "$TDIR/rand4"
}

wl_small() {
  local t=$1 t0 t1 secs extra
  mkdir -p "$TDIR/small"
  t0=$(now)
  timeout -k 10 "$WL_TIMEOUT" tar -xf "$TARBALL" -C "$TDIR/small" || { log "tar -x on $t failed"; return 1; }
  sync
  t1=$(now); secs=$(elapsed "$t0" "$t1")
  record "$t" small_s "$secs"
  record "$t" small_fps "$(rate "$TAR_ENTRIES" "$secs")"
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
  t0=$(now)
  timeout -k 10 "$WL_TIMEOUT" sqlite3 "$d/bench.db" < "$RUN/out/sqlite-$mode.sql" > /dev/null \
    || { log "sqlite3 $mode on $t failed"; return 1; }
  t1=$(now)
  n=$(sqlite3 "$d/bench.db" 'SELECT count(*) FROM t;')
  [ "$n" = "$SQLITE_TX" ] || { log "sqlite3 on $t: $n rows, expected $SQLITE_TX"; return 1; }
  record "$t" "sqlite_${mode,,}_tps" "$(rate "$SQLITE_TX" "$(elapsed "$t0" "$t1")")"
  rm -rf "$d"
}

# Peak RSS through one big sequential write, on a fresh replfs mount (no peer).
wl_rss() {
  local t=$1
  mkdir -p "$TDIR/rss"
  fio_run "$t" rss --filename="$TDIR/rss/rss.dat" --rw=write --bs=1M --size="$RSS_SIZE" --end_fsync=1 || return 1
  record "$t" rss_4g_mb "$(peak_rss_mb "$TPID")"
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

# --- main ------------------------------------------------------------------------------
ROUNDS=${BENCH_ROUNDS:-1}
t_start=$(now)
for round in $(seq 1 "$ROUNDS"); do
[ "$ROUNDS" = 1 ] || log "##### round $round of $ROUNDS"
for t in "${selected[@]}"; do
  log "=== target $t"
  if ! target_start "$t"; then
    log "$t: could not start; skipping its workloads"; record "$t" start ERR; target_stop "$t" || true; continue
  fi
  workloads=(seq rand)
  [ -n "$TREPLICA" ] && workloads+=(rand4)
  ok=1
  for w in "${workloads[@]}" small "sqlite NORMAL" "sqlite FULL"; do
    # shellcheck disable=SC2086
    run_wl "$t" $w || { ok=0; break; }
  done
  [ -n "$TPID" ] && kill -0 "$TPID" 2>/dev/null && record "$t" rss_run_mb "$(peak_rss_mb "$TPID")"
  target_stop "$t"
  [ $ok = 1 ] || log "$t: stopped early (a process died); see $RUN/logs"
  if [ "$t" = replfs ] && [ "$round" = 1 ]; then
    log "=== target $t: peak RSS through a $RSS_SIZE sequential write (fresh mount)"
    rm -rf --one-file-system "${RUN:?}/$t"
    if target_start "$t"; then run_wl "$t" rss || true; fi
    target_stop "$t"
  fi
  rm -rf --one-file-system "${RUN:?}/$t" 2>/dev/null || true
done
done

# --- report ----------------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
{
  echo "replfs benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -r), $(nproc) cores, quick=$QUICK"
  echo "sizes: seq $SEQ_SIZE, rand $RAND_SIZE for ${RAND_RUNTIME}s, sqlite $SQLITE_TX tx, rss write $RSS_SIZE, tarball /usr/$TAR_SRC ($TAR_ENTRIES entries, $TAR_MB MiB)"
  echo "targets run: ${selected[*]}; rounds: $ROUNDS (figures are medians across rounds); total time $(elapsed "$t_start" "$(now)") s"
  echo
  node "$ROOT/scripts/bench/table.mjs" "$RESULTS_TSV" $([ "$QUICK" = 1 ] && echo --quick)
} > "$RUN/results.txt"
cp "$RUN/results.txt" "$WORK/results-$stamp.txt"
cp "$RUN/results.txt" "$WORK/results.txt"
echo
cat "$RUN/results.txt"
echo
log "results written to $WORK/results.txt (and results-$stamp.txt); raw figures in $RESULTS_TSV"
