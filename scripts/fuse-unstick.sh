#!/usr/bin/env bash
# Frees FUSE mounts under a path prefix whose server died, hangs, or was simply left
# behind: aborts the kernel connection (fusectl), then unmounts lazily. Other mounts
# under the prefix (an ext4 on a loop device over an image in a test's mount) are
# unmounted lazily too, and loop devices whose backing file is under the prefix are
# detached, so a timed-out test leaves nothing behind.
#
# Usage: scripts/fuse-unstick.sh PREFIX [--list] [--quiet]
#   PREFIX   only mounts at PREFIX or below it are touched (required: never all of /tmp)
#   --list   only print the mounts found
#   --quiet  print nothing when there is nothing to do
#
# Aborting the connection first matters: `umount -l` alone detaches the mount but leaves
# processes blocked in a syscall on a dead server hanging; the abort fails them with
# ENOTCONN at once. Exit status is 0 unless a mount could not be released.
set -u

prefix=${1:-}
[ -n "$prefix" ] && [ "${prefix#/}" != "$prefix" ] || { echo "usage: $0 /ABSOLUTE/PREFIX [--list] [--quiet]" >&2; exit 2; }
prefix=${prefix%/}
[ -n "$prefix" ] || { echo "fuse-unstick: refusing prefix /" >&2; exit 2; }
list=0; quiet=0
for a in "${@:2}"; do
  case "$a" in --list) list=1 ;; --quiet) quiet=1 ;; *) echo "fuse-unstick: unknown argument $a" >&2; exit 2 ;; esac
done

conns=/sys/fs/fuse/connections
if [ $list = 0 ] && [ -d $conns ] && ! mountpoint -q $conns 2>/dev/null; then
  mount -t fusectl none $conns 2>/dev/null || true
fi

# /proc/self/mountinfo: field 3 is major:minor, field 5 the mount point (octal escapes),
# the filesystem type follows " - ". Collect first, then act deepest-first, so nested
# mounts (a mount inside a FUSE mount) go before their parents.
found=()
while read -r _ _ devid _ mnt rest; do
  fstype=${rest#* - }; fstype=${fstype%% *}
  mnt=$(printf '%b' "$mnt")
  case "$mnt" in "$prefix"|"$prefix"/*) ;; *) continue ;; esac
  case "$fstype" in fuse|fuse.*|fuseblk) minor=${devid#*:} ;; *) minor=- ;; esac
  found+=("$minor $mnt")
done < /proc/self/mountinfo

# Loop devices backed by files under the prefix (losetup -ln: NAME BACK-FILE).
loops=()
if command -v losetup >/dev/null 2>&1; then
  while read -r dev back; do
    case "$back" in "$prefix"/*) loops+=("$dev") ;; esac
  done < <(losetup -ln -O NAME,BACK-FILE 2>/dev/null)
fi

if [ ${#found[@]} -eq 0 ] && [ ${#loops[@]} -eq 0 ]; then
  [ $quiet = 1 ] || echo "fuse-unstick: no FUSE mounts under $prefix"
  exit 0
fi

if [ $list = 1 ]; then
  for entry in "${found[@]}"; do
    minor=${entry%% *}; mnt=${entry#* }
    if [ "$minor" = - ]; then echo "other mount: $mnt"; else echo "fuse mount: $mnt (connection $minor)"; fi
  done
  for dev in "${loops[@]}"; do echo "loop device: $dev"; done
  exit 0
fi

# 1. abort every FUSE connection first, so nothing waits on a dead server meanwhile.
for entry in "${found[@]}"; do
  minor=${entry%% *}
  if [ "$minor" != - ] && [ -w "$conns/$minor/abort" ]; then echo 1 > "$conns/$minor/abort" 2>/dev/null || true; fi
done
# 2. unmount, deepest first.
rc=0
while IFS= read -r entry; do
  [ -n "$entry" ] || continue
  minor=${entry%% *}; mnt=${entry#* }
  if umount -l "$mnt" 2>/dev/null || { [ "$minor" != - ] && fusermount -uz "$mnt" 2>/dev/null; }; then
    echo "fuse-unstick: released $mnt"
  else
    echo "fuse-unstick: could not unmount $mnt" >&2; rc=1
  fi
done < <(printf '%s\n' "${found[@]}" | awk 'NF { print length($0) "\t" $0 }' | sort -rn | cut -f2-)
# 3. detach loop devices (autoclear if still busy behind a lazy unmount).
for dev in "${loops[@]}"; do
  losetup -d "$dev" 2>/dev/null && echo "fuse-unstick: detached $dev"
done
exit $rc
