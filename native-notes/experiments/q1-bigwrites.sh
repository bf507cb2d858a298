#!/bin/bash
# Q1: write/read request sizes with and without option injection via fsname.
source /work/main/native-notes/experiments/lib.sh
run () {
  local label=$1 opts=$2
  start_server q1 "$opts"
  echo "=== $label opts=$opts"
  grep -o '"str":"[^"]*"' $LOG
  grep " $MNT " /proc/mounts
  grep -m1 -o '/[^ ]*libfuse[^ ]*' /proc/$(pgrep -P $SPID node || echo $SPID)/maps 2>/dev/null | head -1
  timeout 30 dd if=/dev/zero of=$MNT/f bs=1M count=8 2>&1 | tail -1
  echo -n "write sizes (count size): "; grep '"ev":"start","op":"write"' $LOG | sed 's/.*"<buf \([0-9]*\)>".*/\1/' | sort -n | uniq -c | tr '\n' ';'; echo
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  : > $LOG.r; cp $LOG $LOG.w; : > $LOG
  timeout 30 dd if=$MNT/f of=/dev/null bs=1M 2>&1 | tail -1
  echo -n "read sizes (count size): "; grep '"ev":"start","op":"read"' $LOG | sed 's/.*"<buf \([0-9]*\)>".*/\1/' | sort -n | uniq -c | tr '\n' ';'; echo
  stop_server
}
run default '{}'
run bigwrites '{"fsname":"replfs,big_writes,max_write=131072"}'
run bigwrites_only '{"fsname":"replfs,big_writes"}'
run bigwrites_maxread '{"fsname":"replfs,big_writes,max_write=131072,max_read=131072"}'
run maxRead_opt '{"fsname":"replfs,big_writes,max_write=131072","maxRead":131072}'
run max_write_1M '{"fsname":"replfs,big_writes,max_write=1048576"}'
