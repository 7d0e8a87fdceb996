#!/usr/bin/env bash
# Benchmark: builds the release server, then runs scripts/bench_floor.py (the collector against
# the bare reads of the same keys, 6 to 100,000 workers), scripts/bench_trends.py (the cycle
# with trends against without, and the series' Redis memory; 10,000 workers + 1M keys),
# scripts/bench.py (/nodes throughput) and scripts/bench_cluster.py (one Redis against a local
# 3-primary Cluster, 100,000 workers). Arguments: N:M scenarios for the first three, e.g.
# `scripts/bench.sh 10000:1000000` (the Cluster bench then takes N).
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools wrk python3
build_release
python3 "$ROOT/scripts/bench_floor.py" "$@"
python3 "$ROOT/scripts/bench_trends.py" "$@"
python3 "$ROOT/scripts/bench.py" "$@"
exec python3 "$ROOT/scripts/bench_cluster.py" $(for a in "$@"; do echo "${a%%:*}"; done)
