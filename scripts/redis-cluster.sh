#!/usr/bin/env bash
# A local Redis Cluster for trying it (SPEC §12): three primaries on 127.0.0.1 — with
# CLUSTER_REPLICAS=1 each with a replica that takes over when its primary dies — Debian's
# redis-server with `--cluster-enabled yes`, the slots spread by `redis-cli --cluster create`.
#
#   scripts/redis-cluster.sh start [DIR]   start them (DIR default .run/cluster), print the
#                                          settings (REDIS_CLUSTER_NODES)
#   scripts/redis-cluster.sh primaries [DIR]
#                                          the ports of the primaries now, one per line
#   scripts/redis-cluster.sh stop [DIR]    stop every one still running
#
# Ports: CLUSTER_PORTS ("7010 7011 7012", with replicas "7010 … 7015": the first three become
# primaries); each node's cluster bus on its port + 10000, or on CLUSTER_BUS_PORTS (as many,
# same order) when given. CLUSTER_TLS_DIR: a directory with redis.crt, redis.key and ca.crt —
# the nodes then speak TLS only (clients and the cluster bus; `rediss://`, REDIS_CA_FILE=ca.crt).
# Node PORT's pid is in DIR/PORT.pid (`kill -9 $(cat DIR/7010.pid)`
# kills that node). A start wipes DIR's cluster state: every start is a new, empty cluster.
source "$(dirname "$0")/lib.sh"

cmd="${1:-start}"
DIR="${2:-$ROOT/.run/cluster}"
REPLICAS="${CLUSTER_REPLICAS:-0}"
case "$REPLICAS" in 0) default_ports="7010 7011 7012" ;; 1) default_ports="7010 7011 7012 7013 7014 7015" ;;
  *) echo "CLUSTER_REPLICAS must be 0 or 1" >&2; exit 2 ;; esac
CLUSTER_PORTS="${CLUSTER_PORTS:-$default_ports}"
read -r -a BUS_PORTS <<<"${CLUSTER_BUS_PORTS:-}"
tls_server=()
tls_cli=()
if [ -n "${CLUSTER_TLS_DIR:-}" ]; then
  t="$(cd "$CLUSTER_TLS_DIR" && pwd)"
  tls_server=(--tls-cert-file "$t/redis.crt" --tls-key-file "$t/redis.key" --tls-ca-cert-file "$t/ca.crt"
    --tls-auth-clients no --tls-cluster yes --tls-replication yes)
  tls_cli=(--tls --cacert "$t/ca.crt")
fi
# redis-cli to one node, over TLS when the nodes speak it.
cli() { local port="$1"; shift; redis-cli "${tls_cli[@]}" -p "$port" "$@"; }

case "$cmd" in
  start)
    ensure_apt redis-server redis-tools
    mkdir -p "$DIR"
    stop_pidfiles "$DIR"
    nodes=()
    i=0
    for port in $CLUSTER_PORTS; do
      mkdir -p "$DIR/$port"
      rm -f "$DIR/$port/nodes.conf"
      bus=()
      [ -n "${BUS_PORTS[$i]:-}" ] && bus=(--cluster-port "${BUS_PORTS[$i]}")
      if [ ${#tls_server[@]} -gt 0 ]; then
        listen=(--port 0 --tls-port "$port" "${tls_server[@]}")
      else
        listen=(--port "$port")
      fi
      redis-server "${listen[@]}" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
        "${bus[@]}" \
        --dir "$DIR/$port" --pidfile "$DIR/$port.pid" --logfile "$DIR/$port.log"
      nodes+=("127.0.0.1:$port")
      i=$((i + 1))
    done
    for port in $CLUSTER_PORTS; do
      for _ in $(seq 100); do cli "$port" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
      cli "$port" PING 2>/dev/null | grep -q PONG || { echo "redis on port $port did not start (see $DIR/$port.log)" >&2; exit 1; }
    done
    redis-cli "${tls_cli[@]}" --cluster create "${nodes[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$DIR/create.log" 2>&1 \
      || { cat "$DIR/create.log" >&2; exit 1; }
    # Every node agrees the slots are covered before anyone writes.
    for port in $CLUSTER_PORTS; do
      for _ in $(seq 100); do
        cli "$port" CLUSTER INFO | grep -q 'cluster_state:ok' && break
        sleep 0.1
      done
      cli "$port" CLUSTER INFO | grep -q 'cluster_state:ok' \
        || { echo "the cluster did not come up on port $port (see $DIR/$port.log)" >&2; exit 1; }
    done
    joined="$(IFS=,; echo "${nodes[*]}")"
    if [ "$REPLICAS" = 1 ]; then
      # Each replica has its primary's data before anyone relies on it taking over.
      for port in $CLUSTER_PORTS; do
        cli "$port" ROLE | head -1 | grep -q slave || continue
        for _ in $(seq 100); do
          cli "$port" INFO replication | grep -q 'master_link_status:up' && break
          sleep 0.1
        done
      done
      say "a 3-primary Redis Cluster with a replica each on $joined (logs: $DIR)"
    else
      say "a 3-primary Redis Cluster on $joined (logs: $DIR)"
    fi
    echo "REDIS_CLUSTER_NODES=$joined"
    ;;
  primaries)
    for port in $CLUSTER_PORTS; do
      if cli "$port" ROLE 2>/dev/null | head -1 | grep -q master; then echo "$port"; fi
    done
    ;;
  stop)
    stop_pidfiles "$DIR"
    ;;
  *)
    echo "usage: $0 start|primaries|stop [DIR]" >&2
    exit 2
    ;;
esac
