#!/usr/bin/env python3
"""pipeline-agent benchmark against a real redis-server (BENCHMARKS.md "Pipeline agent").

Prints, each beside a same-run reference and the ratio:
  1. Jobs/s of one agent with handler `true` at concurrency 1, 8 and 32, and Redis round trips
     and commands per job (from INFO commandstats), against a minimal Python worker doing the
     same BLMOVE / run handler / LREM loop with the same handler and as many threads.
  2. Agent RSS with 4 pipelines idle and under load.
  3. pause_pipeline sent (POST /api/commands to the release server) -> the pipeline takes no
     new job: p50 and max of 20, against the POST's own answer time (the HTTP floor).
"""
import json, os, re, signal, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BIN, ROOT, machine_line, start_redis, stop_all, free_port, redis_info, resp, wait  # noqa: E402
from bench_control import Resp, http, pipe  # noqa: E402

AGENT_BIN = os.path.join(ROOT, "target", "release", "pipeline-agent")
JOBS = int(os.environ.get("JOBS", "3000"))
OPERATOR = "bench-operator-token-0123456789"
AGENT_TOKEN = "bench-agent-token-0123456789"


def commandstats(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "commandstats"], capture_output=True, text=True).stdout
    return {m[0]: int(m[1]) for m in re.findall(r"cmdstat_(\w+):calls=(\d+)", out)}


def fill(port, queue, n, tag):
    pipe(port, [resp("LPUSH", f"queue:{queue}", *[f"{tag}-{i}" for i in range(j, min(j + 1000, n))])
                for j in range(0, n, 1000)])


def llen(port, key):
    return int(Resp(port).call("LLEN", key))


def start_agent(tmp, rport, pipelines, extra_env=None):
    d = tempfile.mkdtemp(dir=tmp)
    api = free_port()
    lines = [f'api: {{ listen: "127.0.0.1:{api}" }}', "agent: { max_concurrent: 64 }", "pipelines:"]
    for pid, queue, conc in pipelines:
        lines.append(f'  - {{ id: {pid}, queue: {queue}, handler: ["true"], concurrency: {conc} }}')
    with open(os.path.join(d, "agent.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    env = dict(os.environ, CONFIG_DIR=d, REDIS_HOST="127.0.0.1", REDIS_PORT=str(rport),
               RUST_LOG="warn", AGENT_ID=f"bench-{api}", **(extra_env or {}))
    p = subprocess.Popen([AGENT_BIN, "--config", os.path.join(d, "agent.yaml")], env=env)
    wait("agent api", lambda: http("GET", f"http://127.0.0.1:{api}/health")[0] == 200)
    return p, f"http://127.0.0.1:{api}", f"bench-{api}"


def python_worker(rport, queue, threads, n):
    """The reference: the seed's worker loop in Python, one connection per thread."""
    done = [0]
    lock = threading.Lock()

    def loop(i):
        r = Resp(rport)
        proc = f"processing:queue:{queue}:py-{i}"
        while True:
            job = r.call("BLMOVE", f"queue:{queue}", proc, "RIGHT", "LEFT", "0.2")
            if job is None:
                return
            subprocess.run(["true"], input=job.encode())
            r.call("LREM", proc, "-1", job)
            with lock:
                done[0] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0] / (time.perf_counter() - t0)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def main():
    for b in (BIN, AGENT_BIN):
        if not os.path.exists(b):
            raise SystemExit(f"{b} missing: run scripts/bench-agent.sh (it builds first)")
    print(machine_line())
    tmp = tempfile.mkdtemp(prefix="ao-bench-agent-")
    rport = free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp))

        # 1. Throughput at three concurrencies, agent vs the Python loop.
        for conc in (1, 8, 32):
            q = f"bench{conc}"
            agent, api, _ = start_agent(tmp, rport, [("p", q, conc)])
            time.sleep(0.5)
            before = commandstats(rport)
            fill(rport, q, JOBS, "a")
            t0 = time.perf_counter()
            wait("agent drained", lambda: json.loads(http("GET", f"{api}/pipelines/p")[1])["processed_count"] >= JOBS,
                 timeout=600)
            agent_rate = JOBS / (time.perf_counter() - t0)
            after = commandstats(rport)
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            trips = (delta.get("blmove", 0) + delta.get("lrem", 0)) / JOBS
            cmds = sum(v for k, v in delta.items() if k not in ("info", "lpush")) / JOBS
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
            fill(rport, q, JOBS, "py")
            py_rate = python_worker(rport, q, conc, JOBS)
            print(json.dumps({"bench": "jobs/s, handler `true`", "concurrency": conc, "jobs": JOBS,
                              "agent_jobs_per_s": round(agent_rate), "reference_python_worker_jobs_per_s": round(py_rate),
                              "ratio": round(agent_rate / py_rate, 2),
                              "redis_round_trips_per_job": round(trips, 2), "redis_commands_per_job": round(cmds, 2)}))
            sys.stdout.flush()

        # 2. RSS with 4 pipelines, idle then under load.
        agent, api, _ = start_agent(tmp, rport, [(f"p{i}", f"rss{i}", 4) for i in range(4)])
        time.sleep(3)
        idle = rss_mib(agent.pid)
        for i in range(4):
            fill(rport, f"rss{i}", JOBS // 2, "r")
        peak = idle
        t0 = time.time()
        while time.time() - t0 < 120:
            peak = max(peak, rss_mib(agent.pid))
            if all(llen(rport, f"queue:rss{i}") == 0 for i in range(4)):
                break
            time.sleep(0.1)
        print(json.dumps({"bench": "agent RSS, 4 pipelines x concurrency 4", "idle_mib": round(idle, 1),
                          "under_load_peak_mib": round(peak, 1), "target_mib": 30}))
        sys.stdout.flush()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)

        # 3. Pause latency through the control plane.
        hport = free_port()
        env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{rport}", RUST_LOG="warn", API_ONLY="true",
                   OPERATOR_TOKEN=OPERATOR, AGENT_TOKEN=AGENT_TOKEN, LEPTOS_SITE_ADDR=f"127.0.0.1:{hport}",
                   LEPTOS_OUTPUT_NAME="agent-office", LEPTOS_SITE_ROOT=os.path.join(ROOT, "target", "site"),
                   LEPTOS_SITE_PKG_DIR="pkg")
        server = subprocess.Popen([BIN], env=env)
        procs.append(server)
        base = f"http://127.0.0.1:{hport}"
        wait("server", lambda: http("GET", f"{base}/healthz")[0] == 200)
        agent, api, aid = start_agent(tmp, rport, [("p", "pause", 1)],
                                      {"CONTROL_PLANE_URL": base, "AGENT_TOKEN": AGENT_TOKEN})
        procs.append(agent)
        wait("agent registered", lambda: any(a["agent_id"] == aid and a["online"]
                                             for a in json.loads(http("GET", f"{base}/api/agents")[1])["agents"]))
        r = Resp(rport)
        lat, ledger = [], []
        for _ in range(20):
            fill(rport, "pause", 100_000, "z")
            time.sleep(0.3)
            t0 = time.perf_counter()
            http("POST", f"{base}/api/commands",
                           {"type": "pause_pipeline", "pipeline_id": "p", "agent_id": aid}, OPERATOR)
            ledger.append((time.perf_counter() - t0) * 1000)
            # the moment the queue stops shrinking is the last job taken
            last_len, last_change = int(r.call("LLEN", "queue:pause")), time.perf_counter()
            while time.perf_counter() - last_change < 1.5:
                n = int(r.call("LLEN", "queue:pause"))
                if n != last_len:
                    last_len, last_change = n, time.perf_counter()
                time.sleep(0.001)
            lat.append((last_change - t0) * 1000)
            r.call("DEL", "queue:pause")
            http("POST", f"{base}/api/commands", {"type": "resume_pipeline", "pipeline_id": "p", "agent_id": aid}, OPERATOR)
            time.sleep(0.3)
        lat.sort()
        print(json.dumps({"bench": "pause_pipeline sent -> no new job taken", "runs": len(lat),
                          "p50_ms": round(lat[len(lat) // 2], 1), "max_ms": round(lat[-1], 1),
                          "reference_post_answer_ms_p50": round(sorted(ledger)[len(ledger) // 2], 1),
                          "ratio": round(lat[len(lat) // 2] / max(sorted(ledger)[len(ledger) // 2], 0.001), 1)}))
    finally:
        stop_all(procs, tmp)


if __name__ == "__main__":
    main()
