#!/bin/bash
# Q10b: d_type / d_ino in readdir with and without stats; effect of use_ino/readdir_ino
source /work/main/native-notes/experiments/lib.sh
[ -x /tmp/nn-exp/bin/dtype ] || { mkdir -p /tmp/nn-exp/bin && gcc -o /tmp/nn-exp/bin/dtype $EXP/dtype.c; }
export SERVER_TIMEOUT=30
for combo in "nodots {}" "stats {}" "stats {\"fsname\":\"replfs,use_ino,readdir_ino\"}" "nodots {\"fsname\":\"replfs,use_ino,readdir_ino\"}"; do
  mode=${combo%% *}; opts=${combo#* }
  READDIR_MODE=$mode start_server q10c "$opts"
  mkdir $MNT/sub; echo x > $MNT/sub/file; ln -s file $MNT/sub/ln; mkdir $MNT/sub/dir
  echo "=== READDIR_MODE=$mode opts=$opts   (DT_DIR=4 DT_REG=8 DT_LNK=10 DT_UNKNOWN=0)"
  echo "  readdir: $(timeout 10 /tmp/nn-exp/bin/dtype $MNT/sub)"
  echo "  backing inodes: $(ls -i /tmp/nn-exp/q10c/back/sub | tr '\n' ' ')   stat -c %i via mount: $(stat -c '%n=%i' $MNT/sub/* | tr '\n' ' ')"
  stop_server
done
