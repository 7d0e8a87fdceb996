#!/usr/bin/env python3
"""Collector and /nodes benchmark against a real redis-server (see BENCHMARKS.md).

For each scenario (N workers, M unrelated keys) it starts a fresh redis-server, fills it,
starts the release server, and prints: collector cycle time, round trips per cycle, time until
a changed heartbeat shows in /nodes, one /nodes answer, wrk throughput and latency, Redis
commands/s with and without dashboard load, and memory.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# AGENT_OFFICE_BIN: another build of the server, to compare two builds with the same bench.
BIN = os.environ.get("AGENT_OFFICE_BIN") or os.path.join(ROOT, "target", "release", "agent-office")
SCENARIOS = [(6, 0), (1_000, 0), (10_000, 0), (10_000, 1_000_000)]
WRK_SECONDS = int(os.environ.get("WRK_SECONDS", "10"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, gzip=True):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def nodes(base):
    return json.loads(http_get(f"{base}/api/agent-office/nodes", gzip=False))


def metric(base, name):
    text = http_get(f"{base}/metrics", gzip=False).decode()
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def redis_info(port, field):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO"], capture_output=True, text=True).stdout
    m = re.search(rf"^{field}:(\S+)", out, re.M)
    return m.group(1) if m else None


def heartbeat(name, state="idle"):
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps({"name": name, "kind": "render", "state": state, "ts": ts,
                       "last_job_at": None, "jobs_done": 1, "jobs_failed": 0})


def resp(*args):
    out = [f"*{len(args)}\r\n"]
    for a in args:
        a = str(a)
        out.append(f"${len(a.encode())}\r\n{a}\r\n")
    return "".join(out)


def fill(port, names):
    """Heartbeats (TTL 1 h, so nothing expires mid-run) and a queue entry for every 10th worker."""
    cmds = []
    for i, n in enumerate(names):
        cmds.append(resp("SET", f"worker:{n}:heartbeat", heartbeat(n), "EX", 3600))
        if i % 10 == 0:
            cmds.append(resp("RPUSH", f"queue:{n}", "job"))
            cmds.append(resp("RPUSH", f"processing:queue:{n}:c1", "job"))
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(cmds).encode(),
                   check=True, capture_output=True)


def wait(what, cond, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        s = f.read()
    return {k: int(re.search(rf"^{k}:\s+(\d+)", s, re.M).group(1)) for k in ("VmRSS", "VmHWM")}


def commands_per_s(port, seconds=5):
    a = int(redis_info(port, "total_commands_processed"))
    time.sleep(seconds)
    b = int(redis_info(port, "total_commands_processed"))
    return (b - a) / seconds


def wrk(url):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{WRK_SECONDS}s", "--latency",
                          "-H", "Accept-Encoding: gzip", url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.M))
    return rps, lat


def machine_line():
    """`# machine: ...` — the machine and Redis a bench ran on, printed first."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return f"# machine: {os.cpu_count()} cores, {cpu}; redis {version}"


def start_redis(port, tmp, debug=False):
    """A private redis-server without persistence (`debug`: with DEBUG POPULATE allowed);
    returns its process once it answers."""
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp]
                         + (["--enable-debug-command", "local"] if debug else []), stdout=subprocess.DEVNULL)
    wait("redis", lambda: redis_info(port, "redis_version"))
    return p


def server_env(rport, hport, **extra):
    """The release server's environment as the README deploys it (scripts/lib.sh's LEPTOS_*)."""
    return dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{rport}", RUST_LOG="warn",
                LEPTOS_OUTPUT_NAME="agent-office", LEPTOS_SITE_ROOT=os.path.join(ROOT, "target", "site"),
                LEPTOS_SITE_PKG_DIR="pkg", LEPTOS_ENV="PROD", LEPTOS_HASH_FILES="true",
                LEPTOS_SITE_ADDR=f"127.0.0.1:{hport}", **extra)


def stop_all(procs, tmp):
    """SIGTERM (after SIGCONT, in case a bench froze one) in reverse start order, then cleans up."""
    for p in reversed(procs):
        p.send_signal(signal.SIGCONT)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def scenario(n, m):
    tmp = tempfile.mkdtemp(prefix="ao-bench-")
    rport, hport = free_port(), free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp, debug=True))
        if m:
            subprocess.run(["redis-cli", "-p", str(rport), "DEBUG", "POPULATE", str(m), "noise"], check=True,
                           capture_output=True)
        names = (["music-render", "video-render", "image-render", "insta-render"] if n == 6
                 else [f"bench-{i:05d}" for i in range(n)])
        fill(rport, names)
        env = server_env(rport, hport)
        t0 = time.time()
        server = subprocess.Popen([BIN], env=env)
        procs.append(server)
        base = f"http://127.0.0.1:{hport}"
        expected = len(names) + (2 if n == 6 else 6)  # the registry's six, watcher and trader included
        wait("all workers in /nodes", lambda: len(nodes(base)["workers"]) >= expected)
        discovered_s = time.time() - t0
        time.sleep(3)  # a few steady-state cycles

        count0, sum0 = metric(base, "agent_office_collector_cycle_seconds_count"), metric(base, "agent_office_collector_cycle_seconds_sum")
        time.sleep(5)
        count1, sum1 = metric(base, "agent_office_collector_cycle_seconds_count"), metric(base, "agent_office_collector_cycle_seconds_sum")
        cycle_ms = (sum1 - sum0) / max(count1 - count0, 1) * 1000
        trips = metric(base, "agent_office_collector_round_trips")

        target = names[len(names) // 2]
        subprocess.run(["redis-cli", "-p", str(rport), "SET", f"worker:{target}:heartbeat",
                        heartbeat(target, "busy"), "EX", "3600"], check=True, capture_output=True)
        t1 = time.time()
        wait("changed heartbeat", lambda: any(w["name"] == target and w["state"] == "busy" for w in nodes(base)["workers"]))
        visible_s = time.time() - t1

        singles = []
        for _ in range(20):
            t = time.perf_counter()
            body = http_get(f"{base}/api/agent-office/nodes")
            singles.append((time.perf_counter() - t) * 1000)
        singles.sort()
        idle_cmds = commands_per_s(rport)
        load = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{WRK_SECONDS}s", "-H", "Accept-Encoding: gzip",
                                 f"{base}/api/agent-office/nodes"], stdout=subprocess.DEVNULL)
        loaded_cmds = commands_per_s(rport, seconds=min(5, WRK_SECONDS - 1))
        load.wait()
        rps, lat = wrk(f"{base}/api/agent-office/nodes")
        mem = rss_kib(server.pid)
        return {
            "workers": n, "unrelated_keys": m, "all_listed_after_s": round(discovered_s, 2),
            "cycle_ms": round(cycle_ms, 2), "round_trips_per_cycle": trips,
            "changed_heartbeat_visible_s": round(visible_s, 2),
            "one_request_ms_median": round(singles[len(singles) // 2], 2), "one_request_ms_max": round(singles[-1], 2),
            "gzip_body_kib": round(len(body) / 1024, 1),
            "wrk_requests_per_s": rps, "wrk_latency": lat,
            "redis_cmds_per_s_idle": round(idle_cmds, 1), "redis_cmds_per_s_under_load": round(loaded_cmds, 1),
            "server_rss_mib": round(mem["VmRSS"] / 1024, 1), "server_peak_rss_mib": round(mem["VmHWM"] / 1024, 1),
            "redis_used_memory": redis_info(rport, "used_memory_human"),
        }
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run scripts/bench.sh (it builds first)")
    picked = SCENARIOS
    if len(sys.argv) > 1:
        picked = [tuple(int(x) for x in a.split(":")) for a in sys.argv[1:]]
    print(machine_line())
    for n, m in picked:
        r = scenario(n, m)
        print(json.dumps(r))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
