#!/bin/bash
# Q2a: how many ops are in flight in JS at once.
source /work/main/native-notes/experiments/lib.sh
maxin () { node $EXP/analyze.cjs $LOG $1 | tr "\n" " "; }
# workers: count distinct threads of server process (node + fuse threads)
threads () { ls /proc/$(pgrep -f "^node .*server.cjs $MNT" | head -1)/task | wc -l; }
export DELAY_WRITE=20 SERVER_TIMEOUT=200
start_server q2 '{"fsname":"replfs,big_writes,max_write=131072"}'
echo "threads before: $(threads)"
echo "--- 4 dd processes, 4 different files, DELAY_WRITE=20ms"
for i in 1 2 3 4; do timeout 60 dd if=/dev/zero of=$MNT/f$i bs=1M count=4 status=none & P="$P $!"; done; wait $P; P=
echo "max inflight write: $(maxin write)   threads after: $(threads)"
: > $LOG
echo "--- 4 dd processes, SAME file (conv=notrunc, distinct offsets)"
for i in 0 1 2 3; do timeout 60 dd if=/dev/zero of=$MNT/same bs=1M count=4 seek=$((i*4)) conv=notrunc status=none & P="$P $!"; done; wait $P; P=
echo "max inflight write same file: $(maxin write)"
: > $LOG
echo "--- fio numjobs=4 separate files, psync bs=128k"
(cd $MNT && timeout 60 fio --name=j --numjobs=4 --rw=write --bs=128k --size=4m --ioengine=psync --group_reporting >/dev/null 2>&1)
echo "max inflight write fio: $(maxin write)"
: > $LOG
echo "--- fio numjobs=8, file per job, psync randwrite 4k"
(cd $MNT && timeout 60 fio --name=k --numjobs=8 --rw=randwrite --bs=4k --size=256k --ioengine=psync >/dev/null 2>&1)
echo "max inflight write fio8: $(maxin write)  threads now: $(threads)"
: > $LOG
echo "--- fio numjobs=4 SAME file (filename=shared)"
(cd $MNT && timeout 60 fio --name=s --filename=shared --numjobs=4 --rw=randwrite --bs=4k --size=256k --ioengine=psync >/dev/null 2>&1)
echo "max inflight write same-file fio: $(maxin write)"
: > $LOG
unset DELAY_WRITE
export DELAY_GETATTR=200
echo "--- 20 parallel stat of distinct names (DELAY_GETATTR=200) "
for i in $(seq 1 20); do timeout 30 stat $MNT/nofile$i >/dev/null 2>&1 & P="$P $!"; done; wait $P; P=
echo "max inflight getattr: $(maxin getattr)  threads now: $(threads)"
stop_server
