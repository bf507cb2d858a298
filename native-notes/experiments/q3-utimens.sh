#!/bin/bash
# Q3: what utimens receives; stat precision through the mount.
source /work/main/native-notes/experiments/lib.sh
export SERVER_TIMEOUT=60
start_server q3 '{}'
echo x > $MNT/f; ln -s f $MNT/ln
show () { grep '"ev":"start","op":"utimens"' $LOG | sed 's/.*"args":\(\[[^]]*\]\).*/    utimens args \1/'; : > $LOG; }
: > $LOG
echo "touch f (both now), now=$(date +%s%3N)"; touch $MNT/f; show
echo "touch -m f"; touch -m $MNT/f; show
echo "touch -a f"; touch -a $MNT/f; show
echo "touch -d '2020-01-02 03:04:05.123456789' f  (= $(date -d '2020-01-02 03:04:05.123456789' +%s.%N))"; touch -d '2020-01-02 03:04:05.123456789' $MNT/f; show
echo "python os.utime(f, ns=(1000.5e9, 2000.25e9)) distinct atime/mtime"; python3 -c "import os;os.utime('$MNT/f', ns=(1000500000000, 2000250000000))"; show
echo "python os.utime(f, ns=(3000e9, 3000e9+999999)) sub-ms"; python3 -c "import os;os.utime('$MNT/f', ns=(3000000000000, 3000000999999))"; show
echo "touch -h ln (symlink itself)"; touch -h $MNT/ln; show
echo "touch -h -d @5000 ln"; touch -h -d @5000 $MNT/ln; show
echo "stat precision: backing mtime vs mount mtime"
touch -d '2020-01-02 03:04:05.123456789' $MNT/../back/g
stat -c 'backing g: %y' /tmp/nn-exp/q3/back/g; stat -c 'mount   g: %y' $MNT/g
stop_server
