#!/usr/bin/env python3
"""Trends against none (BENCHMARKS.md "Trends"), same run.

One redis-server with N workers (the fleet of bench_floor.py: nine in ten beating, every worker
with a queue, a dead-letter list and two processing lists; here their counters grow, a job every
10 s, so every series has points and every card a sparkline) plus M unrelated keys. The release
server is started in turn with `NO_TRENDS=1` and with the trends on (its default), ROUNDS
times each, alternating; each run measures the mean collector cycle over 10 s, the server's CPU
and RSS, then times `/infra` (the server-rendered page of 500 cards, sparklines drawn in) and
`/api/sparklines` for those 500 cards. Printed: the median of each mode, the ratio on/off (target ≤ 1.1), and the Redis memory
the series take: the sum of `MEMORY USAGE` over every `agent-office:{trends}:ring:*` key and
the growth of `used_memory`. A ring is made at its full length the first time it is written,
so the figure after the first write is the figure after 30 days.
"""
import json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (BIN, free_port, http_get, machine_line, redis_info, rss_kib,  # noqa: E402
                   server_env, start_redis, stop_all, wait)
import bench_floor  # noqa: E402
from bench_floor import Beater, cpu_s, cycle_window, fill, median, names_for  # noqa: E402


def busy_beat(name, age_s=0):
    """bench_floor's heartbeat with counters that grow (a job every 10 s), so every card has a
    sparkline to draw and every series points to write."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age_s))
    done = int(time.time()) // 10
    return json.dumps({"name": name, "kind": "render", "state": "busy", "ts": ts,
                       "last_job_at": None, "jobs_done": done, "jobs_failed": done // 20})


bench_floor.beat = busy_beat

ROUNDS = 3


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True).stdout


def ring_memory(port):
    """(keys, bytes by MEMORY USAGE, the 30d ring's length of one worker) over every ring."""
    keys = [k for k in cli(port, "--scan", "--pattern", "agent-office:{trends}:ring:*").split() if k]
    cmds = "".join(f"MEMORY USAGE {k} SAMPLES 0\n" for k in keys)
    out = subprocess.run(["redis-cli", "-p", str(port)], input=cmds, capture_output=True, text=True,
                         check=True).stdout.split()
    total = sum(int(x) for x in out if x.isdigit())
    one = next((k for k in keys if ":30d:w:" in k), None)
    strlen = int(cli(port, "STRLEN", one).strip()) if one else 0
    return len(keys), total, strlen


def timed(url, n=10):
    """(median ms, bytes) of `n` GETs of `url`."""
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        size = len(http_get(url, gzip=False))
        times.append((time.perf_counter() - t) * 1000)
    return median(times), size


def run(rport, names, trends, tmp):
    hport = free_port()
    env = server_env(rport, hport, **({} if trends else {"NO_TRENDS": "1"}))
    server = subprocess.Popen([BIN], env=env)
    base = f"http://127.0.0.1:{hport}"
    try:
        wait("every worker listed", lambda: json.loads(http_get(f"{base}/api/agent-office/nodes?limit=1",
                                                                 gzip=False))["summary"]["total"] >= len(names),
             timeout=300)
        # A discovery pass, then (with trends) the last hour read and a first write of every ring.
        time.sleep(14)
        cpu0, t0 = cpu_s(server.pid), time.time()
        cycle, _, _ = cycle_window(base, 10)
        cpu = (cpu_s(server.pid) - cpu0) / (time.time() - t0) * 100
        # A page of 500 cards (the dashboard's page; `bench-000` picks 1,000 workers, problems
        # first: 100 down, 400 busy), its sparklines drawn in by the server, and the browser's
        # sparklines request for that page: median of 10 each.
        page = timed(f"{base}/infra?view=2d&q=bench-000")
        sparks = timed(f"{base}/api/sparklines?q=bench-000&order=problems&limit=500")
        return cycle, cpu, rss_kib(server.pid)["VmRSS"] / 1024, page, sparks
    finally:
        stop_all([server], os.path.join(tmp, "none"))


def scenario(n, m):
    tmp = tempfile.mkdtemp(prefix="ao-trends-")
    rport = free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp, debug=True))
        if m:
            cli(rport, "DEBUG", "POPULATE", str(m), "noise")
        names = names_for(n)
        fill(rport, names)
        beater = Beater(rport, names)
        beater.start()
        used_before = int(redis_info(rport, "used_memory"))
        results = {False: [], True: []}
        for _ in range(ROUNDS):
            for trends in (False, True):
                results[trends].append(run(rport, names, trends, tmp))
        beater.stop_flag.set()
        keys, usage, strlen = ring_memory(rport)
        used_after = int(redis_info(rport, "used_memory"))
        med = lambda mode, i: median([r[i] for r in results[mode]])  # noqa: E731
        off, on = med(False, 0), med(True, 0)
        return {
            "workers": n, "unrelated_keys": m,
            "cycle_ms_trends_off": round(off, 2), "cycle_ms_trends_on": round(on, 2),
            "ratio_on_to_off": round(on / off, 2) if off else None,
            "rounds_ms": {"off": [round(r[0], 1) for r in results[False]],
                          "on": [round(r[0], 1) for r in results[True]]},
            "server_cpu_percent": {"off": round(med(False, 1), 1), "on": round(med(True, 1), 1)},
            "server_rss_mib": {"off": round(med(False, 2), 1), "on": round(med(True, 2), 1)},
            "infra_page_500_cards_ms": {"off": round(median([r[3][0] for r in results[False]]), 1),
                                        "on": round(median([r[3][0] for r in results[True]]), 1)},
            "infra_page_kib": {"off": round(results[False][0][3][1] / 1024, 1),
                               "on": round(results[True][0][3][1] / 1024, 1)},
            "sparklines_500_ms": round(median([r[4][0] for r in results[True]]), 1),
            "sparklines_500_kib": round(results[True][0][4][1] / 1024, 1),
            "ring_keys": keys, "ring_memory_usage_mib": round(usage / 2**20, 1),
            "ring_bytes_per_worker": round(usage / max(n, 1)),
            "redis_used_memory_growth_mib": round((used_after - used_before) / 2**20, 1),
            "ring_30d_strlen": strlen,
        }
    finally:
        stop_all(procs, tmp)


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run scripts/bench.sh (it builds first)")
    picked = [(10_000, 1_000_000)]
    if len(sys.argv) > 1:
        picked = [tuple(int(x) for x in a.split(":")) for a in sys.argv[1:]]
    print(machine_line())
    for n, m in picked:
        print(json.dumps(scenario(n, m)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
