#!/usr/bin/env bash
# The development loop: `cargo leptos watch` (rebuilds and reloads the page on save). Installs
# cargo-leptos and the wasm-bindgen CLI once (5 to 15 minutes); scripts/run.sh does not need them.
#   REDIS_URL   the Redis to watch; when unset a private redis-server is started (no demo fleet:
#               run `target/debug/agent-office demo` beside it for simulated workers)
source "$(dirname "$0")/lib.sh"

ensure_apt redis-server redis-tools python3
ensure_rust_tools
ensure_npm_tools
ensure_cargo_leptos

if [ -z "${REDIS_URL:-}" ]; then
  rport="$(free_port)"
  say "starting a private redis-server on 127.0.0.1:$rport"
  start_redis "$rport" "$ROOT/.run/redis-dev"
  trap 'kill $! 2>/dev/null || true' EXIT
  export REDIS_URL="redis://127.0.0.1:$rport"
fi
cd "$ROOT"
cargo leptos watch
