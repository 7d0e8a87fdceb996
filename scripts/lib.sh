# Shared helpers of scripts/run.sh and scripts/test.sh. Every install step checks first, so a
# second run on a prepared machine costs seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
export PATH="$TOOLS/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

CARGO_LEPTOS_VERSION=0.3.10
BINARYEN_VERSION=132.0.0
ESBUILD_VERSION=0.25.12

# Each step's line says how long the script has run (mm:ss), so a log shows what took the time.
say() { printf '\033[1;36m==>\033[0m [%02d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

# ensure_apt PKG...: installs the Debian packages that are missing.
ensure_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The wasm32 target (the build itself is `cargo xtask build`: nothing else to install).
ensure_rust_tools() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

# npm_version PKG: the version of .tools/node_modules/PKG, or nothing.
npm_version() {
  sed -n 's/^  "version": "\(.*\)",$/\1/p' "$TOOLS/node_modules/$1/package.json" 2>/dev/null
}

# wasm-opt (npm binaryen: Debian's is too old and breaks the bundle) and esbuild (minifies the
# JS glue and the stylesheet), both prebuilt from npm into .tools.
ensure_npm_tools() {
  if [ "$(npm_version binaryen)" != "$BINARYEN_VERSION" ] || [ "$(npm_version esbuild)" != "$ESBUILD_VERSION" ]; then
    say "installing wasm-opt and esbuild (npm binaryen@$BINARYEN_VERSION, esbuild@$ESBUILD_VERSION)"
    mkdir -p "$TOOLS"
    npm install --loglevel=error --no-audit --no-fund --save-exact --prefix "$TOOLS" \
      "binaryen@$BINARYEN_VERSION" "esbuild@$ESBUILD_VERSION" >/dev/null
    command -v wasm-opt >/dev/null && command -v esbuild >/dev/null \
      || { echo "wasm-opt/esbuild did not install (npm, into $TOOLS)" >&2; exit 1; }
  fi
}

# cargo-leptos and the wasm-bindgen CLI matching Cargo.lock: only for `cargo leptos watch`
# (scripts/dev.sh); the release build does not need them.
ensure_cargo_leptos() {
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    # --debug: the tool only orchestrates builds; an optimised install takes 3x longer here.
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (5 to 12 minutes, once)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads --debug
  fi
  local want
  want="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' "$ROOT/Cargo.lock")"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    # Not --locked: its lockfile wants a webpki-roots the registry here does not have.
    say "installing wasm-bindgen-cli $want (2 to 4 minutes, once)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

# The release site (target/site, content-hashed, with .gz copies), target/release/agent-office
# and target/release/pipeline-agent: xtask/ does what `cargo leptos build --release` would.
build_release() {
  ensure_rust_tools
  ensure_npm_tools
  say "building (cargo xtask build)"
  (cd "$ROOT" && cargo xtask build)
}

# start_demo_agent NAME REDIS_PORT CONTROL_URL [QUEUE]: one real pipeline-agent running the
# render worker NAME's queue (QUEUE, NAME by default) with scripts/demo-handler.sh (config and
# state in .run/agents/NAME).
start_demo_agent() {
  local name="$1" rport="$2" url="$3" queue="${4:-$1}" dir="$ROOT/.run/agents/$1"
  mkdir -p "$dir"
  cat >"$dir/agent.yaml" <<YAML
agent: { id: $name-agent, labels: { role: render, worker: $name, env: demo }, max_concurrent: 2, shutdown_grace: 5s }
api: { listen: "127.0.0.1:$(free_port)" }
logging: { level: info, format: text }
pipelines:
  - id: ${name%-render}
    name: $name
    queue: "$queue"
    handler: ["$ROOT/scripts/demo-handler.sh"]
    timeout: 20s
    max_retries: 2
    concurrency: 1
    kind: render
    heartbeat_name: $name
YAML
  env CONFIG_DIR="$dir" REDIS_HOST=127.0.0.1 ${rport:+REDIS_PORT="$rport"} ${AGENT_TOKEN:+CONTROL_PLANE_URL="$url"} \
    "$ROOT/target/release/pipeline-agent" --config "$dir/agent.yaml" >"$dir/agent.log" 2>&1 &
}

# free_port: a TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_redis PORT DIR: a private redis-server that keeps what it learned in DIR (an
# append-only file, fsync'd every second), so the next run finds the jobs, schedules and history
# of this one. It runs in a session of its own, so a Ctrl-C reaches the agents and the server
# first and the caller's cleanup stops Redis after them (it then writes its last second). One
# left running by a run that was killed outright is stopped first (its pid file in DIR).
start_redis() {
  local port="$1" dir="$2"
  mkdir -p "$dir"
  local old
  old="$(cat "$dir/redis.pid" 2>/dev/null || true)"
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null && grep -q redis-server "/proc/$old/cmdline" 2>/dev/null; then
    say "stopping the private redis-server an earlier run left (pid $old)"
    kill "$old"
    for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  fi
  setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" &
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server did not start (see $dir/redis.log)" >&2
  return 1
}

# The settings cargo-leptos gives the server, for running the binary on its own.
export_leptos_env() {
  export LEPTOS_OUTPUT_NAME=agent-office
  export LEPTOS_SITE_ROOT="$ROOT/target/site"
  export LEPTOS_SITE_PKG_DIR=pkg
  export LEPTOS_ENV=PROD
  # The bundle's file names carry content hashes, listed in target/release/hash.txt.
  export LEPTOS_HASH_FILES=true
  export LEPTOS_SITE_ADDR="$1"
}

# redis-cli answers PING on port $1.
redis_answers() { redis-cli -p "$1" PING 2>/dev/null | grep -q PONG; }

# Stops every process whose pid file is in $1 and waits until each is gone (its port free again).
stop_pidfiles() {
  for pidfile in "$1"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  done
}
