#!/bin/bash
# Q4: unlink while open, default vs hard_remove
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=60
for opts in '{}' '{"fsname":"replfs,hard_remove"}'; do
  start_server q4 "$opts"
  echo "=== opts $opts"
  : > $LOG
  timeout 20 python3 $EXP/q4-unlink-open.py $MNT
  echo "  backing dir after close: $(ls -A /tmp/nn-exp/q4/back | tr '\n' ' ')"
  echo "  handler ops (excluding getattr of / and flush):"
  grep '"ev":"start"' $LOG | grep -v '"op":"flush"' | sed 's/.*"op":"\([a-z]*\)","args":\(\[[^]]*\]\).*/    \1 \2/' | grep -v 'getattr \["/"\]'
  grep '"ev":"uncaught"' $LOG
  cat /tmp/nn-exp/q4/server.out | grep -v MOUNTED
  stop_server
done
