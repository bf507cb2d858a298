# Helper: source this. start_server NAME OPTSJSON [env...]; stop_server
EXP=/work/main/native-notes/experiments
start_server () {
  NAME=$1; OPTS=${2:-'{}'}
  MNT=/tmp/nn-exp/$NAME/mnt; BK=/tmp/nn-exp/$NAME/back; LOG=/tmp/nn-exp/$NAME/log.jsonl
  fusermount -uz "$MNT" 2>/dev/null
  rm -rf /tmp/nn-exp/$NAME; mkdir -p "$MNT" "$BK"; : > "$LOG"
  timeout ${SERVER_TIMEOUT:-60} node $EXP/server.cjs "$MNT" "$BK" "$LOG" "$OPTS" > /tmp/nn-exp/$NAME/server.out 2>&1 &
  SPID=$!
  for i in $(seq 1 50); do grep -q MOUNTED /tmp/nn-exp/$NAME/server.out 2>/dev/null && break; sleep 0.1; done
  grep -q MOUNTED /tmp/nn-exp/$NAME/server.out || { echo "mount failed"; cat /tmp/nn-exp/$NAME/server.out; }
}
stop_server () {
  kill -TERM $SPID 2>/dev/null
  for i in $(seq 1 30); do kill -0 $SPID 2>/dev/null || break; sleep 0.1; done
  kill -0 $SPID 2>/dev/null && kill -KILL $SPID
  fusermount -uz "$MNT" 2>/dev/null
  grep -q " $MNT " /proc/mounts && echo "WARN still mounted $MNT"
  true
}
