#!/bin/bash
# Q8: binding op timeout (default 15 s) vs timeout:false
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=60
for opts in '{"timeout":"default"}' '{"timeout":false}'; do
  start_server q8 "$opts"
  echo "=== opts $opts ; write handler delayed 17 s"
  echo '{"DELAY_WRITE":17000}' > /tmp/nn-exp/q8/ctl.json
  s=$(date +%s.%N)
  timeout 40 python3 -c "
import os,time
fd=os.open('$MNT/f',os.O_CREAT|os.O_WRONLY,0o644)
try: print('  write returned', os.write(fd,b'late-data'))
except OSError as e: print('  write failed errno',e.errno,e.strerror)
os.close(fd)"
  e=$(date +%s.%N); echo "  app waited $(echo "$e - $s" | bc) s"
  sleep 3
  echo "  backing file content after handler finished: '$(cat /tmp/nn-exp/q8/back/f)'"
  grep '"op":"write"' $LOG | sed 's/.*"ev":"\([a-z]*\)".*"res":\(\[[^]]*\]\).*/    \1 res=\2/; s/.*"ev":"start".*/    start/' 
  cat /tmp/nn-exp/q8/server.out | grep -v MOUNTED
  stop_server
done
