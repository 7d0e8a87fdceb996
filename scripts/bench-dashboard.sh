#!/usr/bin/env bash
# Dashboard benchmark: builds the release bundle, prints its sizes, then drives Debian's
# Chromium (SwiftShader WebGL2) through end2end/bench: first cards, first 3D frame and frame
# times at 6 and at 200 workers. Figures go to BENCHMARKS.md by hand.
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools chromium nginx python3 curl
bash "$ROOT/scripts/bundle-size.sh"
cd "$ROOT/end2end"
if [ ! -d node_modules/@playwright/test ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund
fi
npx playwright test -c bench.config.ts
