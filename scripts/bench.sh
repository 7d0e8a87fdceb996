#!/usr/bin/env bash
# Benchmark: builds the release server, then runs scripts/bench_floor.py (the collector against
# the bare reads of the same keys, 6 to 100,000 workers), scripts/bench_trends.py (the cycle
# with trends against without, and the series' Redis memory; 10,000 workers + 1M keys) and
# scripts/bench.py (/nodes throughput). Arguments: N:M scenarios for all three, e.g.
# `scripts/bench.sh 10000:1000000`.
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools wrk python3
build_release
python3 "$ROOT/scripts/bench_floor.py" "$@"
python3 "$ROOT/scripts/bench_trends.py" "$@"
exec python3 "$ROOT/scripts/bench.py" "$@"
