#!/bin/bash
# Q6: statfs figures through the uint32 binding
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=30
echo "backing (/tmp) figures:"; df -B1 /tmp | tail -1; stat -f -c 'bsize=%S frsize? blocks=%b bfree=%f bavail=%a files=%c ffree=%d' /tmp
for mode in real huge scaled; do
  export STATFS_MODE=$mode
  start_server q6 '{}'
  echo "=== STATFS_MODE=$mode"
  grep statfs-out $LOG | head -0
  df -B1 $MNT | tail -1; df -h $MNT | tail -1; df -i $MNT | tail -1
  stat -f -c '  stat -f: bsize(%s) fundamental(%S) blocks=%b bfree=%f bavail=%a files=%c ffree=%d namelen=%l' $MNT
  grep -m1 statfs-out $LOG | sed 's/^/  handler returned: /' | cut -c1-250
  stop_server
done
