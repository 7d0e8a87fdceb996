#!/usr/bin/env python3
"""The collector on one Redis against a local three-primary Redis Cluster, same run
(BENCHMARKS.md "Redis Cluster").

Each side: N workers (nine in ten with a fresh heartbeat, one in ten down: a beat two hours old),
each with a queue, a dead-letter list and two processing lists, written to one redis-server, or
to a Cluster started by scripts/redis-cluster.sh (each key to the primary of its slot). The
release server runs as the README deploys it: REDIS_URL, or REDIS_CLUSTER_NODES. Per side, three
10 s windows: the mean collector cycle (`agent_office_collector_cycle_seconds`), the round trips
of a cycle (`agent_office_collector_round_trips`), the server's CPU and RSS. Printed: both sides
and the ratio of their cycles. On two cores the three primaries share the cores with the server,
so the ratio says what a Cluster costs here, not what it gains on three hosts.

    python3 scripts/bench_cluster.py [N ...]      (default 100000)
"""
import json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (BIN, ROOT, free_port, http_get, machine_line, metric, resp, rss_kib,  # noqa: E402
                   server_env, start_redis, stop_all, wait)
from bench_floor import beat, cpu_s, cycle_window, median  # noqa: E402

ROUNDS = 3
SLOTS = 16384


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key):
    k = key.encode()
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return crc16(k) % SLOTS


def fleet(n):
    """(key, RESP command) of every write."""
    out = [("queue:paused", resp("SET", "queue:paused", "0"))]
    for i in range(n):
        name = f"bench-{i // 100:04d}-{i % 100:02d}"
        hb = f"worker:{name}:heartbeat"
        out.append((hb, resp("SET", hb, beat(name, age_s=7200)) if i % 10 == 9
                    else resp("SET", hb, beat(name), "EX", 3600)))
        for key in (f"queue:{name}", f"processing:queue:{name}:c1", f"processing:queue:{name}:c2"):
            out.append((key, resp("RPUSH", key, "job")))
        if i % 50 == 0:
            out.append((f"dead_letter:queue:{name}", resp("RPUSH", f"dead_letter:queue:{name}", "job")))
    return out


def pipe(port, cmds):
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(cmds).encode(), check=True,
                   capture_output=True)


def slot_owners(port):
    """Slot → port of its primary, from CLUSTER SLOTS (redis-cli's raw lines)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "--json", "CLUSTER", "SLOTS"], check=True,
                         capture_output=True, text=True).stdout
    owner = [0] * SLOTS
    for start, end, primary, *_ in json.loads(out):
        for s in range(start, end + 1):
            owner[s] = primary[1]
    return owner


def measure(env, want, hport):
    server = subprocess.Popen([BIN], env=env)
    base = f"http://127.0.0.1:{hport}"
    try:
        wait("every worker listed", lambda: json.loads(http_get(f"{base}/api/agent-office/nodes?limit=1", gzip=False))
             ["summary"]["total"] >= want, timeout=600)
        time.sleep(6)  # a full discovery pass with its processing lists, then steady state
        rounds = []
        for _ in range(ROUNDS):
            cpu0, t0 = cpu_s(server.pid), time.time()
            cycle, per_s, _ = cycle_window(base, 10)
            cpu = (cpu_s(server.pid) - cpu0) / (time.time() - t0) * 100
            rounds.append((cycle, per_s, cpu))
        mem = rss_kib(server.pid)
        return {
            "cycle_ms": round(median([r[0] for r in rounds]), 2),
            "rounds_ms": [round(r[0], 1) for r in rounds],
            "round_trips": metric(base, "agent_office_collector_round_trips"),
            "snapshots_per_s": round(median([r[1] for r in rounds]), 2),
            "server_cpu_percent": round(median([r[2] for r in rounds]), 1),
            "server_rss_mib": round(mem["VmRSS"] / 1024, 1),
        }
    finally:
        stop_all([server], tempfile.mkdtemp())


def one_redis(n, writes):
    tmp = tempfile.mkdtemp(prefix="ao-cl-one-")
    rport, hport = free_port(), free_port()
    procs = [start_redis(rport, tmp)]
    try:
        pipe(rport, [c for _, c in writes])
        return measure(server_env(rport, hport), n, hport)
    finally:
        stop_all(procs, tmp)


def cluster(n, writes):
    tmp = tempfile.mkdtemp(prefix="ao-cl-")
    ports = [free_port() for _ in range(3)]
    bus = [free_port() for _ in range(3)]
    env = dict(os.environ, CLUSTER_PORTS=" ".join(map(str, ports)), CLUSTER_BUS_PORTS=" ".join(map(str, bus)))
    script = os.path.join(ROOT, "scripts", "redis-cluster.sh")
    subprocess.run(["bash", script, "start", tmp], env=env, check=True, capture_output=True)
    try:
        owner = slot_owners(ports[0])
        by_node = {p: [] for p in ports}
        for key, cmd in writes:
            by_node[owner[key_slot(key)]].append(cmd)
        for p, cmds in by_node.items():
            pipe(p, cmds)
        hport = free_port()
        nodes = ",".join(f"127.0.0.1:{p}" for p in ports)
        result = measure(server_env(ports[0], hport, REDIS_CLUSTER_NODES=nodes), n, hport)
        result["keys_per_primary"] = [len(c) for c in by_node.values()]
        return result
    finally:
        subprocess.run(["bash", script, "stop", tmp], env=env, capture_output=True)


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run scripts/bench.sh (it builds first)")
    sizes = [int(a) for a in sys.argv[1:]] or [100_000]
    print(machine_line())
    for n in sizes:
        writes = fleet(n)
        one = one_redis(n, writes)
        on_cluster = cluster(n, writes)
        print(json.dumps({"workers": n, "one_redis": one, "cluster_3_primaries": on_cluster,
                          "cycle_ratio": round(on_cluster["cycle_ms"] / one["cycle_ms"], 2)}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
