#!/bin/bash
# Q7: write Buffer after callback; Q10: readdir with/without '.'/'..' and stats; O_APPEND offsets
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=40
KEEP_WRITE_BUF=1 start_server q7 '{}'
echo "=== Q7 keep write buffer past cb"
printf 'abcdef' > $MNT/f
grep keptbuf $LOG
stop_server
for mode in nodots dots stats dotsstats; do
  READDIR_MODE=$mode start_server q10 '{}'
  mkdir $MNT/sub; echo x > $MNT/sub/file; ln -s file $MNT/sub/ln
  : > $LOG
  echo "=== Q10 READDIR_MODE=$mode"
  echo "  ls -a: $(timeout 10 ls -a $MNT/sub | tr '\n' ' ')"
  echo "  ls -la:"; timeout 10 ls -lai $MNT/sub | sed 's/^/    /'
  echo "  python listdir: $(timeout 10 python3 -c "import os;print(os.listdir('$MNT/sub'))")"
  echo "  find: $(timeout 10 find $MNT/sub | tr '\n' ' ')"
  echo "  getattr calls during listing: $(grep -c '"ev":"start","op":"getattr"' $LOG)  readdir calls: $(grep -c '"ev":"start","op":"readdir"' $LOG)"
  echo "  python scandir d_type/inode: $(timeout 10 python3 -c "import os;print([(e.name,e.is_dir(follow_symlinks=False),e.is_symlink(),e.inode()) for e in os.scandir('$MNT/sub')])")"
  echo "  rm -rf sub: $(timeout 10 rm -rf $MNT/sub && echo ok)"
  stop_server
done
echo "=== O_APPEND: offsets seen by write handler"
start_server q10b '{}'
printf '0123456789' > $MNT/a; : > $LOG
python3 -c "
import os
fd=os.open('$MNT/a', os.O_WRONLY|os.O_APPEND); os.write(fd,b'XY'); os.write(fd,b'Z'); os.close(fd)"
grep '"ev":"start","op":"\(open\|write\)"' $LOG | sed 's/.*"op":"\([a-z]*\)","args":\(\[[^]]*\]\).*/    \1 \2/'
echo "  backing content: $(cat /tmp/nn-exp/q10b/back/a)"
stop_server
