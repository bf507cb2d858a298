#!/bin/bash
# Q2c: upper bound of concurrently in-flight JS handlers (64 threads doing fstat on 64 fds, getattr delayed 500 ms)
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=40
start_server q2m '{"attrTimeout":"0"}'
for i in $(seq 1 64); do echo x > $MNT/f$i; done
: > $LOG
timeout 30 python3 - "$MNT" <<'PY'
import os,sys,time,threading,json
m=sys.argv[1]
fds=[os.open(f"{m}/f{i}",os.O_RDONLY) for i in range(1,65)]
open('/tmp/nn-exp/q2m/ctl.json','w').write('{"DELAY_GETATTR":500}')
t=time.monotonic()
ts=[threading.Thread(target=os.fstat,args=(fd,)) for fd in fds]
[x.start() for x in ts]; [x.join() for x in ts]
print(f"  64 parallel fstat took {time.monotonic()-t:.2f}s")
open('/tmp/nn-exp/q2m/ctl.json','w').write('{}')
PY
node $EXP/analyze.cjs $LOG getattr
echo "  server threads now: $(ls /proc/$(pgrep -f "^node .*server.cjs $MNT" | head -1)/task | wc -l)"
stop_server
