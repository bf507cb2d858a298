#!/bin/bash
# Q2a': getattr/lookup concurrency and upper bound of parallel writers
source /work/main/native-notes/experiments/lib.sh
threads () { ls /proc/$(pgrep -f "^node .*server.cjs $MNT" | head -1)/task | wc -l; }
export DELAY_GETATTR=200 DELAY_WRITE=50 SERVER_TIMEOUT=100
start_server q2b '{"fsname":"replfs,big_writes,max_write=131072"}'
echo "--- 20 parallel stat of distinct nonexistent names in / (DELAY_GETATTR=200)"
for i in $(seq 1 20); do timeout 30 stat $MNT/nofile$i >/dev/null 2>&1 & P="$P $!"; done; wait $P; P=
node $EXP/analyze.cjs $LOG getattr; : > $LOG
echo "--- 32 dd writers, distinct files (DELAY_WRITE=50)"
for i in $(seq 1 32); do timeout 60 dd if=/dev/zero of=$MNT/w$i bs=128k count=4 status=none & P="$P $!"; done; wait $P; P=
node $EXP/analyze.cjs $LOG write; echo "threads now: $(threads)"
stop_server
