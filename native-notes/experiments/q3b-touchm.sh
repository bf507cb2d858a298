#!/bin/bash
# Q3b: is `touch -m` / `touch -a` visible anywhere after it "succeeds"?
source /work/main/native-notes/experiments/lib.sh
start_server q3e '{}'
echo x > $MNT/f; touch -d @1000000 $MNT/../back/f; sleep 1.2
echo "before:        $(stat -c 'atime=%X mtime=%Y' $MNT/f)"
touch -m $MNT/f; echo "touch -m rc=$?"; touch -a $MNT/f; echo "touch -a rc=$?"
echo "right after:   $(stat -c 'atime=%X mtime=%Y' $MNT/f)"; sleep 1.2
echo "after 1.2 s:   $(stat -c 'atime=%X mtime=%Y' $MNT/f)   backing: $(stat -c 'atime=%X mtime=%Y' $MNT/../back/f)"
echo "utimens/setattr-ish handler calls: $(grep -c '"op":"\(utimens\|chmod\|truncate\)"' $LOG)"
stop_server
