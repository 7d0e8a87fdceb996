#!/usr/bin/env bash
# Command 2: every check and test — fmt, clippy, Rust unit and integration tests (real
# redis-server), then Playwright in Debian's Chromium against the release build.
source "$(dirname "$0")/lib.sh"

ensure_apt redis-server redis-tools chromium fonts-noto-cjk nginx python3 curl procps openssl
cd "$ROOT"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
ensure_rust_tools
say "cargo clippy (browser build: hydrate, wasm32)"
cargo clippy -p frontend -p app --target wasm32-unknown-unknown --features app/hydrate --locked -- -D warnings
say "cargo test"
# frontend is left out: it would turn on `hydrate` beside `ssr` in the server under test.
cargo test --workspace --exclude frontend --locked

build_release
say "a second build with nothing changed rebuilds nothing"
warm="$(cd "$ROOT" && cargo xtask build 2>&1)"
printf '%s\n' "$warm" >&2
grep -q "wasm unchanged since the last build" <<<"$warm" \
  || { echo "the warm build re-ran wasm-bindgen/wasm-opt" >&2; exit 1; }
say "the Python heartbeat client (clients/python) against redis-server and the release server"
AO_SERVER_BIN="$ROOT/target/release/agent-office" python3 -m unittest discover \
  -s "$ROOT/clients/python" -t "$ROOT/clients/python"
say "end-to-end tests (Playwright, Chromium)"
cd "$ROOT/end2end"
if [ ! -d node_modules/@playwright/test ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund
fi
npx playwright test
