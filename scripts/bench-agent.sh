#!/usr/bin/env bash
# pipeline-agent benchmark: builds the release server and agent, then runs
# scripts/bench_agent.py (JOBS=3000 per run by default) and scripts/bench_jobs.py (job history:
# on against off, memory per 10,000 jobs, search at SEARCH_JOBS=100000). Figures and the
# machine: BENCHMARKS.md.
source "$(dirname "$0")/lib.sh"
ensure_apt redis-server redis-tools python3
build_release
python3 "$ROOT/scripts/bench_agent.py" "$@"
exec python3 "$ROOT/scripts/bench_jobs.py"
