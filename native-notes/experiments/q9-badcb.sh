#!/bin/bash
# Q9: unlink handler answering cb(null) / cb(new Error())
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=40
for bad in null error; do
  BAD_UNLINK=$bad start_server q9 '{}'
  echo "=== unlink handler calls cb($bad)"
  echo x > $MNT/f
  s=$(date +%s.%N)
  timeout -s KILL 5 rm $MNT/f; rc=$?
  echo "  rm rc=$rc after $(echo "$(date +%s.%N) - $s" | bc | cut -c1-5) s (137 = killed by timeout => hung)"
  grep '"ev":"uncaught"' $LOG | cut -c1-300 | sed 's/^/  /'
  echo "  server alive: $(kill -0 $SPID 2>/dev/null && echo yes || echo no)"
  echo "  other ops still work? stat: $(timeout -s KILL 3 stat -c %s $MNT/f 2>&1; echo rc=$?)"
  echo "  backing has f: $(ls /tmp/nn-exp/q9/back)"
  echo "  ps of stuck procs: $(ps -eo pid,stat,wchan:30,cmd | grep -E 'rm /tmp/nn-exp' | grep -v grep)"
  stop_server
  /work/shared/tools/fuse-unstick /tmp/nn-exp/q9 >/dev/null
done
