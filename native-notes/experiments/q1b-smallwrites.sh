#!/bin/bash
# Q1b: request sizes for app writes smaller/larger than 128 KiB, with big_writes
source /work/main/native-notes/experiments/lib.sh
start_server q1b '{"fsname":"replfs,big_writes,max_write=131072"}'
sizes () { echo -n "  write sizes (count size): "; grep '"ev":"start","op":"write"' $LOG | sed 's/.*"<buf \([0-9]*\)>",[0-9]*,\([0-9]*\).*/\1/' | sort -n | uniq -c | tr '\n' ';'; echo; : > $LOG; }
: > $LOG
echo "dd bs=4k count=256"; timeout 20 dd if=/dev/zero of=$MNT/a bs=4k count=256 status=none; sizes
echo "dd bs=200k count=4"; timeout 20 dd if=/dev/zero of=$MNT/b bs=200k count=4 status=none; sizes
echo "dd bs=1000 count=10 (unaligned)"; timeout 20 dd if=/dev/zero of=$MNT/c bs=1000 count=10 status=none; sizes
echo "dd bs=1M count=1 oflag=direct"; timeout 20 dd if=/dev/zero of=$MNT/d bs=1M count=1 oflag=direct status=none; echo "  rc=$?"; sizes
stop_server
