#!/bin/bash
# Q2b: does a slow rename block ops on the same path / parent? and vice versa.
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=60
for mode in ${MODES:-rename-delayed write-delayed dirrename-delayed dirrename-write-delayed}; do
  start_server q2r '{"entryTimeout":"0","attrTimeout":"0","fsname":"replfs,big_writes,max_write=131072"}'
  echo "=== $mode"
  timeout 30 python3 $EXP/q2-rename.py $MNT /tmp/nn-exp/q2r/ctl.json $mode > /tmp/nn-exp/q2r/client.out &
  CP=$!
  for i in $(seq 1 50); do grep -q MARK /tmp/nn-exp/q2r/client.out && break; sleep 0.05; done
  : > $LOG   # handler timeline from here (t relative to server start)
  wait $CP
  grep -v MARK /tmp/nn-exp/q2r/client.out
  echo "  handler timeline (ms rel. to first event):"
  node -e '
    const ev=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse).filter(e=>e.op&&e.op!=="flush");
    const t0=ev[0].t; for(const e of ev) console.log("   ",(e.t-t0).toFixed(0).padStart(5),e.ev.padEnd(5),e.op,JSON.stringify(e.args.slice(0,2)))' $LOG
  stop_server
done
