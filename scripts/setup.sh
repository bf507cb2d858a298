#!/usr/bin/env bash
# One-time machine and dependency setup for replfs (Debian 12, as root).
#
#   - Debian packages: the native core's build dependencies (ISA-L, libcbor, OpenSSL; it
#     speaks the kernel's FUSE protocol itself, no libfuse), FUSE 2 for bindfs (the
#     benchmark baseline), and what the tests and benchmarks use.
#   - the fuse kernel module and /dev/fuse; fusectl at /sys/fs/fuse/connections
#     (scripts/fuse-unstick.sh aborts hung connections through it).
#   - npm ci, then a check that the npm modules with native parts load.
# The core itself is built by `make native` (node-gyp), not here.
#
# Idempotent: each step checks first and skips what is already done. Quiet when it
# works; on a failure it prints the failing step's full output and exits non-zero.
# Environment: SETUP_SKIP_APT=1 skips the apt step, SETUP_FORCE_NPM=1 forces npm ci.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

# The native core (src/native) builds against ISA-L (CRC32C), libcbor and libxxhash (XXH3);
# pjdfstest (../shared/tools/pjdfstest-run, in the suite) builds with autotools. The fault
# campaign's network namespace uses ip and tc (iproute2) and nsenter (util-linux); a test
# watches the core's fsyncs with strace.
PACKAGES=(fuse libfuse2 fio bindfs e2fsprogs attr rsync sqlite3 git iproute2 util-linux procps openssl kmod python3 make g++ gcc strace
          libisal-dev libcbor-dev libxxhash-dev liburing-dev autoconf automake libtool perl)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

LOG=$(mktemp /tmp/replfs-setup.XXXXXX.log)
trap 'rm -f "$LOG"' EXIT

# run DESCRIPTION CMD...: runs CMD with its output in a log; prints the log and fails on error.
run() {
  local what=$1; shift
  if ! "$@" >"$LOG" 2>&1; then
    printf 'setup: ERROR: %s failed: %s\n' "$what" "$*" >&2
    sed 's/^/  | /' "$LOG" >&2
    exit 1
  fi
}

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else SUDO=(); fi
fi

# --- Debian packages ---------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ "${SETUP_SKIP_APT:-0}" = 1 ]; then
  say "apt step skipped (SETUP_SKIP_APT=1); missing: ${missing[*]:-none}"
elif [ ${#missing[@]} -eq 0 ]; then
  say "Debian packages present"
else
  if [ "$(id -u)" != 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "packages missing (${missing[*]}) and not root: run as root"
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run "apt-get update" "${SUDO[@]}" apt-get update -q
  run "apt-get install" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
fi
for c in fio bindfs sqlite3 git rsync mkfs.ext4 e2fsck setfattr getfattr losetup ip tc nsenter fusermount mountpoint; do
  command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || [ -x "/sbin/$c" ] || die "command $c not found after install"
done

# --- FUSE kernel side --------------------------------------------------------------
if [ ! -e /dev/fuse ]; then
  "${SUDO[@]}" modprobe fuse >/dev/null 2>&1 || say "modprobe fuse failed (built in or not permitted); continuing"
fi
if [ ! -e /dev/fuse ] && grep -qw fuse /proc/filesystems; then
  # The module is there but devtmpfs did not make the node (some containers).
  "${SUDO[@]}" mknod -m 0666 /dev/fuse c 10 229 2>/dev/null || true
fi
[ -c /dev/fuse ] || die "/dev/fuse is missing: this machine (or container) has no FUSE support"
if [ -d /sys/fs/fuse/connections ] && ! mountpoint -q /sys/fs/fuse/connections; then
  "${SUDO[@]}" mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null \
    || say "could not mount fusectl at /sys/fs/fuse/connections (fuse-unstick falls back to umount -l)"
fi
say "FUSE: /dev/fuse present; fusectl $(mountpoint -q /sys/fs/fuse/connections && echo mounted || echo 'not mounted')"

# --- npm dependencies --------------------------------------------------------------
# Skipped when node_modules already matches: npm's record of what it installed
# (node_modules/.package-lock.json) is not older than package-lock.json, `npm ls` finds
# every dependency of package.json, and the native modules load. (Skipping also avoids
# wiping node_modules under a test run in progress.)
modules_load() {
  node -e "require('@node-rs/crc32'); require('cbor-x'); require('commander'); require('lru-cache')" >/dev/null 2>&1
}
need_install=1
if [ "${SETUP_FORCE_NPM:-0}" != 1 ] && [ -f node_modules/.package-lock.json ] \
   && ! [ package-lock.json -nt node_modules/.package-lock.json ] \
   && [ -x node_modules/.bin/tsc ] && npm ls --all >/dev/null 2>&1 && modules_load; then
  need_install=0
fi
if [ $need_install = 1 ]; then
  say "npm ci"
  # npm 11 prints notices that install scripts are not approved (allowScripts): they do not
  # run, and need not: cbor-extract is optional (cbor-x falls back to JS).
  # (package.json pins cbor-extract to 2.2.2 through "overrides": the registry has its
  # @cbor-extract/* platform packages only up to 2.2.2, and npm ci refuses a lock that
  # names missing ones.)
  if ! npm ci --no-audit --no-fund >"$LOG" 2>&1; then
    printf 'setup: ERROR: npm ci failed\n' >&2; sed 's/^/  | /' "$LOG" >&2; exit 1
  fi
else
  say "node_modules up to date"
fi

if ! node -e "require('@node-rs/crc32')" >"$LOG" 2>&1; then
  sed 's/^/  | /' "$LOG" >&2
  die "@node-rs/crc32 does not load (its platform package @node-rs/crc32-linux-x64-gnu is missing?)"
fi
say "npm modules load (@node-rs/crc32, cbor-x)"

mkdir -p /tmp/replfs-test
say "done in $ROOT"
