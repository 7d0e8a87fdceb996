#!/usr/bin/env bash
# Benchmark: builds the release server, then runs scripts/bench.py (arguments: N:M scenarios,
# e.g. `scripts/bench.sh 6:0 10000:1000000`; default all four of BENCHMARKS.md).
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools wrk python3
build_release
exec python3 "$ROOT/scripts/bench.py" "$@"
