#!/usr/bin/env bash
# Command 1: install what is missing, build, and run Agent Office with the demo fleet.
#   REDIS_URL   use this Redis instead of a private one (then no demo fleet is started
#               unless DEMO=1)
#   REDIS_SENTINELS, REDIS_SENTINEL_MASTER
#               use the primary these sentinels name instead (server, demo and agents alike;
#               scripts/redis-sentinel.sh starts a local set); no demo unless DEMO=1
#   REDIS_CLUSTER_NODES
#               use a Redis Cluster instead (scripts/redis-cluster.sh starts a local one);
#               no demo unless DEMO=1, whose render queues then carry hash tags
#               ({image-render}: a queue's lists must share a slot), registered in
#               .run/cluster-workers.toml (AGENT_OFFICE_CONFIG) unless you give your own
#   PORT        dashboard port (default 3000)
#   OPERATOR_TOKEN, AGENT_TOKEN
#               control-plane tokens; when unset, random ones are made once and kept in
#               .run/tokens.env (mode 600), so the Agents page can send commands
source "$(dirname "$0")/lib.sh"

ensure_apt redis-server redis-tools python3 curl
build_release

PORT="${PORT:-3000}"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"
pids=()
redis_pid=""
# The agents finish their jobs in hand and settle them in Redis, so Redis goes last.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$redis_pid" ] || { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; } || true
}
trap cleanup EXIT INT TERM

# On a Cluster a reliable queue's name carries a hash tag (SPEC §12): the demo's render queues
# are {music-render} and so on, and the registry says so.
tag=""
if [ -n "${REDIS_CLUSTER_NODES:-}" ]; then
  say "using the Redis Cluster of $REDIS_CLUSTER_NODES"
  export REDIS_CLUSTER_NODES
  if [ "${DEMO:-0}" = 1 ]; then
    tag=1
    if [ -z "${AGENT_OFFICE_CONFIG:-}" ]; then
      export AGENT_OFFICE_CONFIG="$RUN_DIR/cluster-workers.toml"
      {
        echo "# Written by scripts/run.sh for the demo on a Redis Cluster: render queues with hash tags."
        for w in music-render video-render image-render insta-render; do
          printf '[[workers]]\nname = "%s"\nkind = "render"\nqueue = "{%s}"\n\n' "$w" "$w"
        done
        printf '[[workers]]\nname = "task-watcher"\nkind = "watcher"\n\n[[workers]]\nname = "ai_trade"\nkind = "trader"\n'
      } >"$AGENT_OFFICE_CONFIG"
      say "the demo's render queues on the Cluster: {music-render} … (registry: .run/cluster-workers.toml)"
    fi
  fi
elif [ -n "${REDIS_SENTINELS:-}" ]; then
  say "using the primary the sentinels $REDIS_SENTINELS name (master ${REDIS_SENTINEL_MASTER:-?})"
  export REDIS_SENTINELS REDIS_SENTINEL_MASTER
elif [ -z "${REDIS_URL:-}" ]; then
  rport="$(free_port)"
  say "starting a private redis-server on 127.0.0.1:$rport"
  start_redis "$rport" "$RUN_DIR/redis"
  redis_pid=$!
  export REDIS_URL="redis://127.0.0.1:$rport"
  DEMO="${DEMO:-1}"
fi

if [ -z "${OPERATOR_TOKEN:-}" ] && [ -z "${AGENT_TOKEN:-}" ]; then
  TOKENS="$RUN_DIR/tokens.env"
  if [ ! -s "$TOKENS" ]; then
    (umask 077; python3 -c 'import secrets; print(f"OPERATOR_TOKEN={secrets.token_hex(16)}\nAGENT_TOKEN={secrets.token_hex(16)}")' >"$TOKENS")
  fi
  set -a; source "$TOKENS"; set +a
  say "control-plane tokens are in .run/tokens.env (paste OPERATOR_TOKEN into /agents when asked)"
fi

BIN="$ROOT/target/release/agent-office"
if [ "${DEMO:-0}" = 1 ]; then
  # The render workers are real pipeline-agents (their handler takes a few seconds and
  # sometimes fails); the watcher and the trader are played by `agent-office demo`, which
  # also produces the render jobs.
  say "starting the demo fleet: 4 pipeline-agents + the simulated watcher and trader (logs: .run/)"
  "$BIN" demo --simulate task-watcher,ai_trade >"$RUN_DIR/demo.log" 2>&1 &
  pids+=($!)
  # With sentinels or a Cluster the agents read REDIS_SENTINELS / REDIS_CLUSTER_NODES from the
  # environment instead.
  rport=""
  [ -n "${REDIS_SENTINELS:-}${REDIS_CLUSTER_NODES:-}" ] || rport="${REDIS_URL##*:}"
  for w in music-render video-render image-render insta-render; do
    q="$w"; [ -z "$tag" ] || q="{$w}"
    start_demo_agent "$w" "$rport" "http://127.0.0.1:$PORT" "$q"
    pids+=($!)
  done
fi

export_leptos_env "127.0.0.1:$PORT"
"$BIN" &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
if [ "${DEMO:-0}" = 1 ] && [ -n "${OPERATOR_TOKEN:-}" ]; then
  sweep_queue="image-render"; [ -z "$tag" ] || sweep_queue="{image-render}"
  # The demo ships one schedule, so it fires while you watch: a thumbnail sweep on image-render
  # every 30 s (a 409 means an earlier run left it there).
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $OPERATOR_TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"thumbnail-sweep","cron":"*/30 * * * * *","queue":"'"$sweep_queue"'","job":{"payload":"thumbnail sweep"}}' \
    "http://127.0.0.1:$PORT/api/schedules" || true
fi
say "Agent Office is up: http://127.0.0.1:$PORT/infra   (agents: /agents, jobs: /jobs, schedules: /schedules, API: /api/agent-office/nodes, Ctrl-C stops)"
wait "${pids[-1]}"
