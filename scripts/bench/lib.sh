# Helpers for scripts/bench.sh (sourced). Expects ROOT, RUN, RESULTS_TSV set.

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
# elapsed T0 T1 -> seconds with 3 decimals
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# calc EXPR -> awk arithmetic, 3 decimals
# (the parentheses keep awk from reading a ">" in EXPR as an output redirection)
calc() { awk "BEGIN { printf \"%.3f\", ($1) }"; }
# rate COUNT SECONDS -> COUNT/SECONDS, or "-" when SECONDS is 0
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s + 0 > 0) printf "%.3f", n / s; else printf "-" }'; }

# record TARGET METRIC VALUE: one result row (VALUE may be a number, "ERR", "timeout", "-").
record() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS_TSV"
  log "  $1 $2 = $3"
}

# size_bytes 1g|256m|4096k|123 -> bytes
size_bytes() {
  local s=${1,,} n
  n=${s%[kmgt]}
  case "$s" in
    *k) echo $((n * 1024)) ;; *m) echo $((n * 1024 * 1024)) ;;
    *g) echo $((n * 1024 * 1024 * 1024)) ;; *t) echo $((n * 1024 * 1024 * 1024 * 1024)) ;;
    *) echo "$n" ;;
  esac
}

# wait_for_line FILE REGEX PID TIMEOUT_S: waits until FILE has a line matching REGEX.
# Fails early if PID exits. Returns 0 when found, 1 otherwise.
wait_for_line() {
  local file=$1 re=$2 pid=$3 limit=$4 i=0 max
  max=$(( limit * 10 ))
  while [ $i -lt $max ]; do
    if [ -f "$file" ] && grep -Eq "$re" "$file"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid exited before printing /$re/"; return 1
    fi
    sleep 0.1; i=$((i + 1))
  done
  log "no /$re/ from process $pid within ${limit}s"
  return 1
}

# stop_pid PID NAME TIMEOUT_S: SIGTERM, wait, then SIGKILL. Prints the exit status.
stop_pid() {
  local pid=$1 name=$2 limit=${3:-60} i=0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ $i -lt $(( limit * 10 )) ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not exit within ${limit}s of SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  [ $rc = 0 ] || log "$name (pid $pid) exited with status $rc"
  PIDS=("${PIDS[@]/$pid}")
  return 0
}

# descendants PID -> PID and all its descendants, one per line
descendants() {
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do descendants "$c"; done
}

# peak_rss_mb PID -> the largest VmHWM (MiB) of PID and its descendants
peak_rss_mb() {
  local max=0 p v
  for p in $(descendants "$1"); do
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
  done
  calc "$max / 1024"
}

# free_port -> an unused TCP port on 127.0.0.1 within BENCH_PORTS (default 17400-17499)
free_port() {
  local range=${BENCH_PORTS:-17400-17499}
  node -e '
    const net = require("net");
    const [lo, hi] = process.argv[1].split("-").map(Number);
    const used = new Set((process.argv[2] || "").split(" ").filter(Boolean).map(Number));
    const start = lo + Math.floor(Math.random() * (hi - lo + 1));
    const tryPort = (i) => {
      if (i > hi - lo) { console.error("no free port in " + process.argv[1]); process.exit(1); }
      const p = lo + ((start - lo + i) % (hi - lo + 1));
      if (used.has(p)) return tryPort(i + 1);
      const s = net.createServer();
      s.once("error", () => tryPort(i + 1));
      s.listen(p, "127.0.0.1", () => { s.close(() => console.log(p)); });
    };
    tryPort(0);
  ' "$range" "${USED_PORTS:-}"
}

# cpu_s PID -> CPU seconds (user + system, all threads) the process has used so far
CLK_TCK=$(getconf CLK_TCK)
cpu_s() {
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# fio_get JSON_FILE bw|iops|bytes -> write bandwidth (MiB/s), IOPS or bytes written of the first job
# (the aggregate with --group_reporting)
fio_get() {
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const w = j.jobs[0].write;
    const k = process.argv[2];
    const v = k === "bw" ? w.bw_bytes / 1048576 : k === "bytes" ? w.io_bytes : w.iops;
    process.stdout.write(v.toFixed(k === "bw" ? 1 : 0));
  ' "$1" "$2"
}

# unmount_dir DIR: unmount a FUSE mount point (gently, then by force).
unmount_dir() {
  local d=$1
  mountpoint -q "$d" 2>/dev/null || return 0
  fusermount -u "$d" 2>/dev/null || umount "$d" 2>/dev/null || bash "$ROOT/scripts/fuse-unstick.sh" "$d" --quiet || true
}
