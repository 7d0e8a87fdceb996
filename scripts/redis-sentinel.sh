#!/usr/bin/env bash
# A local Sentinel set for trying failover (SPEC §12): a primary, a replica and three sentinels
# on 127.0.0.1, Debian's redis-server in each role (`--sentinel` for the sentinels).
#
#   scripts/redis-sentinel.sh start [DIR]   start them (DIR default .run/sentinel), print the
#                                           settings for scripts/run.sh
#   scripts/redis-sentinel.sh stop [DIR]    stop every one still running
#   scripts/redis-sentinel.sh primary [DIR] the address the sentinels name as primary now
#
# Ports: PRIMARY_PORT (6390), REPLICA_PORT (6391), SENTINEL_PORTS ("26390 26391 26392"); the
# master's name: REDIS_SENTINEL_MASTER (agent-office); SENTINEL_PASSWORD, when set, is the
# sentinels' own requirepass (give it to Agent Office as REDIS_SENTINEL_PASSWORD). A sentinel calls the primary down after
# 1 s without an answer and two of three agree, so a SIGKILLed primary is replaced in a few s.
source "$(dirname "$0")/lib.sh"

cmd="${1:-start}"
DIR="${2:-$ROOT/.run/sentinel}"
PRIMARY_PORT="${PRIMARY_PORT:-6390}"
REPLICA_PORT="${REPLICA_PORT:-6391}"
SENTINEL_PORTS="${SENTINEL_PORTS:-26390 26391 26392}"
MASTER="${REDIS_SENTINEL_MASTER:-agent-office}"

# redis-cli to a sentinel on port $1 (with the sentinels' password when they have one).
sentinel_cli() {
  local port="$1"; shift
  if [ -n "${SENTINEL_PASSWORD:-}" ]; then
    REDISCLI_AUTH="$SENTINEL_PASSWORD" redis-cli -p "$port" "$@"
  else
    redis-cli -p "$port" "$@"
  fi
}

wait_for() {
  for _ in $(seq 100); do sentinel_cli "$1" PING 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  echo "redis on port $1 did not start (see $DIR/*.log)" >&2
  exit 1
}


case "$cmd" in
  start)
    ensure_apt redis-server redis-tools
    mkdir -p "$DIR"
    stop_pidfiles "$DIR"
    for role in primary replica; do
      port=$PRIMARY_PORT
      extra=()
      if [ "$role" = replica ]; then
        port=$REPLICA_PORT
        extra=(--replicaof 127.0.0.1 "$PRIMARY_PORT")
      fi
      mkdir -p "$DIR/$role"
      redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --repl-diskless-sync-delay 0 \
        --dir "$DIR/$role" --pidfile "$DIR/$role.pid" --logfile "$DIR/$role.log" "${extra[@]}"
      wait_for "$port"
    done
    # The replica holds the primary's data before anything is written (a failover then loses
    # at most the last writes in flight, never everything).
    # (online on the primary's side: after a diskless sync it streams writes to the replica only
    # once the replica's first acknowledgement arrives, up to a second later).
    for _ in $(seq 100); do
      redis-cli -p "$PRIMARY_PORT" INFO replication | grep -q "port=$REPLICA_PORT,state=online" && break
      sleep 0.1
    done
    list=()
    for port in $SENTINEL_PORTS; do
      conf="$DIR/sentinel-$port.conf"
      cat >"$conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $DIR/sentinel-$port.pid
logfile $DIR/sentinel-$port.log
dir $DIR
sentinel monitor $MASTER 127.0.0.1 $PRIMARY_PORT 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
EOF
      if [ -n "${SENTINEL_PASSWORD:-}" ]; then
        printf 'requirepass %s\nsentinel sentinel-pass %s\n' "$SENTINEL_PASSWORD" "$SENTINEL_PASSWORD" >>"$conf"
      fi
      redis-server "$conf" --sentinel
      wait_for "$port"
      list+=("127.0.0.1:$port")
    done
    joined="$(IFS=,; echo "${list[*]}")"
    say "primary 127.0.0.1:$PRIMARY_PORT, replica 127.0.0.1:$REPLICA_PORT, sentinels $joined (logs: $DIR)"
    echo "REDIS_SENTINELS=$joined"
    echo "REDIS_SENTINEL_MASTER=$MASTER"
    ;;
  stop)
    stop_pidfiles "$DIR"
    ;;
  primary)
    first="${SENTINEL_PORTS%% *}"
    sentinel_cli "$first" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER" | paste -sd:
    ;;
  *)
    echo "usage: $0 start|stop|primary [DIR]" >&2
    exit 2
    ;;
esac
