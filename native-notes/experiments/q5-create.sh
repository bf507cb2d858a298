#!/bin/bash
# Q5: create args, O_EXCL, fallocate
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=90
start_server q5 '{"fsname":"replfs,big_writes,max_write=131072"}'
: > $LOG; M=/tmp/nn-exp/q5/marks; : > $M
timeout 30 python3 $EXP/q5-create.py $MNT $M
echo "--- handler ops (start events; flush/getattr / removed)"
grep '"ev":"start"' $LOG | grep -v '"op":"flush"' | sed 's/.*"op":"\([a-z]*\)","args":\(\[[^]]*\]\).*/    \1 \2/' | grep -v 'getattr \["/"\]'
: > $LOG
echo "--- fallocate -l 1M f"; timeout 10 fallocate -l 1M $MNT/fa; echo "rc=$?"
echo "--- fallocate -l 1M on existing file"; echo x > $MNT/fb; timeout 10 fallocate -l 1M $MNT/fb; echo "rc=$? size=$(stat -c %s $MNT/fb)"
echo "--- strace fallocate"; timeout 10 strace -e trace=fallocate fallocate -l 1M $MNT/fc 2>&1 | grep -v '^+++'
echo "--- fio --fallocate=posix"; (cd $MNT && timeout 30 fio --name=fp --size=1m --bs=128k --rw=write --fallocate=posix --ioengine=psync 2>&1 | grep -iE 'err|fallocate|WRITE:' | head -5); echo "rc=$?"
echo "--- fio --fallocate=native"; (cd $MNT && timeout 30 fio --name=fn --size=1m --bs=128k --rw=write --fallocate=native --ioengine=psync 2>&1 | grep -iE 'err|fallocate|WRITE:' | head -5)
echo "--- fio default (fallocate=native default on linux?)"; (cd $MNT && timeout 30 fio --name=fd --size=1m --bs=128k --rw=write --ioengine=psync 2>&1 | grep -iE 'err|fallocate|WRITE:' | head -5)
echo "--- handler ops during fallocate/fio (op counts)"
grep '"ev":"start"' $LOG | sed 's/.*"op":"\([a-z]*\)".*/\1/' | sort | uniq -c | tr '\n' ' '; echo
stop_server
