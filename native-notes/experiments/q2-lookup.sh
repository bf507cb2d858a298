#!/bin/bash
# Q2a'': lookup vs getattr concurrency; same dir vs different dirs
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=100
start_server q2c '{"entryTimeout":"0","attrTimeout":"0"}'
CTL=/tmp/nn-exp/q2c/ctl.json
for i in $(seq 1 10); do mkdir $MNT/d$i; touch $MNT/d$i/x $MNT/e$i; done
echo '{"DELAY_GETATTR":200}' > $CTL; : > $LOG
echo "--- 10 parallel stat of 10 existing files in ONE dir (entry/attr timeout 0)"
for i in $(seq 1 10); do timeout 30 stat $MNT/e$i >/dev/null & P="$P $!"; done; wait $P; P=
node $EXP/analyze.cjs $LOG getattr; : > $LOG
echo "--- 10 parallel stat of nonexistent names in ONE dir"
for i in $(seq 1 10); do timeout 30 stat $MNT/nx$i >/dev/null 2>&1 & P="$P $!"; done; wait $P; P=
node $EXP/analyze.cjs $LOG getattr; : > $LOG
echo "--- 10 parallel stat of nonexistent names in 10 DIFFERENT dirs"
for i in $(seq 1 10); do timeout 30 stat $MNT/d$i/nx >/dev/null 2>&1 & P="$P $!"; done; wait $P; P=
node $EXP/analyze.cjs $LOG getattr; : > $LOG
echo "--- 10 parallel fstat-only (open fds held, getattr via fstat) : python"
echo '{"DELAY_GETATTR":0}' > $CTL
python3 - "$MNT" <<'PY' &
import os,sys,time,threading
m=sys.argv[1]
fds=[os.open(f"{m}/e{i}",os.O_RDONLY) for i in range(1,11)]
open('/tmp/nn-exp/q2c/ctl.json','w').write('{"DELAY_GETATTR":200}')
time.sleep(0.2)
ts=[threading.Thread(target=os.fstat,args=(fd,)) for fd in fds]
[t.start() for t in ts]; [t.join() for t in ts]
PY
P=$!; sleep 0.1; : > $LOG; wait $P; P=
node $EXP/analyze.cjs $LOG getattr
stop_server
