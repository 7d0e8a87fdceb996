#!/usr/bin/env bash
# Control-plane benchmark: builds the release server, then runs scripts/bench_control.py
# (AGENTS=10000 WORKERS=10000 by default). Figures and the machine: BENCHMARKS.md.
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools python3
build_release
exec python3 "$ROOT/scripts/bench_control.py" "$@"
