#!/usr/bin/env bash
# io-uring-bench.sh ROUNDS: bindfs vs replfs (/dev/fuse) vs replfs --io-uring, interleaved
# rounds, fresh mount per target per round. Workloads as scripts/bench.sh (quick sizes):
# fio 4 KiB random write QD1 (psync, 64 MiB laid out first, 5 s), SQLite WAL NORMAL
# (SQLITE_TX one-row transactions). Daemon CPU (utime+stime of the server, /proc) per fio write.
# TARGETS=... picks; replfs-uring-alt runs the addon at $ALT_ADDON (a variant build).
# Prints one line per run: round target rand_iops cpu_us_per_write sqlite_tps.
set -uo pipefail
ROUNDS=${1:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${BENCH_DIR:-/tmp/uring-x/bench}
SQLITE_TX=${SQLITE_TX:-1000}
TARGETS=${TARGETS:-bindfs replfs replfs-uring}
TCK=$(getconf CLK_TCK)
rm -rf "$W"; mkdir -p "$W"
{ echo "PRAGMA synchronous=NORMAL;"; awk -v n="$SQLITE_TX" 'BEGIN { for (i = 1; i <= n; i++) print "BEGIN; INSERT INTO t(v) VALUES (hex(randomblob(32))); COMMIT;" }'; } > "$W/normal.sql"
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
start() { # TARGET -> PID in $TPID, mount at $W/mnt
  rm -rf "$W/data" "$W/mnt" "$W/state"; mkdir -p "$W/data" "$W/mnt"
  case $1 in
    bindfs) bindfs -f -o big_writes,max_write=131072 "$W/data" "$W/mnt" > "$W/server.log" 2>&1 & TPID=$! ;;
    replfs) timeout -s TERM 600 node "$ROOT/dist/cli.js" mount "$W/data" "$W/mnt" --state "$W/state" > "$W/server.log" 2>&1 & TPID=$! ;;
    replfs-uring-alt) REPLFS_NATIVE=$ALT_ADDON timeout -s TERM 600 node "$ROOT/dist/cli.js" mount "$W/data" "$W/mnt" --state "$W/state" --io-uring > "$W/server.log" 2>&1 & TPID=$! ;;
    replfs-uring) timeout -s TERM 600 node "$ROOT/dist/cli.js" mount "$W/data" "$W/mnt" --state "$W/state" --io-uring > "$W/server.log" 2>&1 & TPID=$! ;;
  esac
  for i in $(seq 1 100); do mountpoint -q "$W/mnt" && grep -q "" /proc/mounts && break; sleep 0.1; done
  if [ "$1" != bindfs ]; then for i in $(seq 1 100); do grep -q ready "$W/server.log" && break; sleep 0.1; done; fi
  # timeout(1) is the parent: the server is its child
  if [ "$1" != bindfs ]; then SPID=$(pgrep -P "$TPID" | head -1); else SPID=$TPID; fi
}
stop() {
  if [ "$1" = bindfs ]; then fusermount -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; else kill -TERM "$SPID"; fi
  wait "$TPID" 2>/dev/null
  mountpoint -q "$W/mnt" && /work/shared/tools/fuse-unstick "$W/mnt"
}
for r in $(seq 1 "$ROUNDS"); do
  for t in $TARGETS; do
    start "$t"
    f="$W/mnt/rand.dat"
    timeout 120 fio --name=layout --ioengine=psync --fallocate=none --filename="$f" --rw=write --bs=1M --size=64m > /dev/null 2>&1
    c0=$(cpu "$SPID")
    timeout 120 fio --name=rand --ioengine=psync --fallocate=none --output-format=json --output="$W/fio.json" \
      --filename="$f" --rw=randwrite --bs=4k --iodepth=1 --size=64m --overwrite=1 --time_based --runtime=5 > /dev/null 2>&1
    c1=$(cpu "$SPID")
    read -r iops ios < <(node -e 'const j=require(process.argv[1]).jobs[0].write; console.log(j.iops.toFixed(0), j.total_ios)' "$W/fio.json")
    cpuus=$(awk -v a="$c0" -v b="$c1" -v n="$ios" -v k="$TCK" 'BEGIN { printf "%.1f", (b - a) / k * 1e6 / n }')
    rm -f "$f"
    mkdir -p "$W/mnt/sq"
    sqlite3 "$W/mnt/sq/bench.db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);' > /dev/null
    t0=$(date +%s.%N)
    timeout 120 sqlite3 "$W/mnt/sq/bench.db" < "$W/normal.sql" > /dev/null
    t1=$(date +%s.%N)
    tps=$(awk -v a="$t0" -v b="$t1" -v n="$SQLITE_TX" 'BEGIN { printf "%.0f", n / (b - a) }')
    echo "$r $t rand_iops=$iops cpu_us_per_write=$cpuus sqlite_normal_tps=$tps"
    stop "$t"
  done
done
