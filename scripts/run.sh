#!/usr/bin/env bash
# Command 1: install what is missing, build, and run Agent Office with the demo fleet.
#   REDIS_URL   use this Redis instead of a private one (then no demo fleet is started
#               unless DEMO=1)
#   PORT        dashboard port (default 3000)
source "$(dirname "$0")/lib.sh"

ensure_apt redis-server redis-tools python3 curl
build_release

PORT="${PORT:-3000}"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${REDIS_URL:-}" ]; then
  rport="$(free_port)"
  say "starting a private redis-server on 127.0.0.1:$rport"
  start_redis "$rport" "$RUN_DIR/redis"
  pids+=($!)
  export REDIS_URL="redis://127.0.0.1:$rport"
  DEMO="${DEMO:-1}"
fi

BIN="$ROOT/target/release/agent-office"
if [ "${DEMO:-0}" = 1 ]; then
  say "starting the demo fleet (log: .run/demo.log)"
  "$BIN" demo >"$RUN_DIR/demo.log" 2>&1 &
  pids+=($!)
fi

export_leptos_env "127.0.0.1:$PORT"
"$BIN" &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
say "Agent Office is up: http://127.0.0.1:$PORT/infra   (API: /api/agent-office/nodes, Ctrl-C stops)"
wait "${pids[-1]}"
