#!/usr/bin/env bash
# Hostile-input benchmark: builds the release server, then runs scripts/bench_hostile.py
# (a 100 MB heartbeat value; /nodes with STREAMS=1000 push streams open). Figures: BENCHMARKS.md.
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools python3 wrk
build_release
exec python3 "$ROOT/scripts/bench_hostile.py" "$@"
