#!/bin/bash
# Q5b: glibc posix_fallocate fallback step vs statfs bsize (STATFS_MODE=scaled -> bsize 1 MiB)
source /work/main/native-notes/experiments/lib.sh
STATFS_MODE=scaled start_server q5b '{}'
: > $LOG
timeout 20 python3 -c "
import os; fd=os.open('$MNT/e', os.O_CREAT|os.O_RDWR, 0o644); os.posix_fallocate(fd, 0, 4<<20); print('  size', os.fstat(fd).st_size); os.close(fd)"
echo "  writes: $(grep -c '"ev":"start","op":"write"' $LOG); offsets: $(grep '"ev":"start","op":"write"' $LOG | sed 's/.*,\([0-9]*\)\],"inflight.*/\1/' | head -5 | tr '\n' ' ')"
stop_server
