#!/usr/bin/env python3
"""Job history benchmark (SPEC §10; README "Jobs you can follow", BENCHMARKS.md "Jobs").

Prints, each beside a same-run reference and the ratio:
  1. Jobs/s of one agent, handler `true`, concurrency 8, history on against the same agent with
     `history: { enabled: false }` (target: >= 80 % kept), and the Redis commands per job of each.
  2. Redis memory of 10,000 jobs' history with 1 KiB of output each, run through a real agent
     (target: <= 30 MiB), against the same 10,000 items sitting in a plain list (the queue alone).
  3. Search latency at 100,000 retained jobs (records in the agent's layout, seeded straight
     into Redis), through the release server's GET /api/jobs?q=: a word no job has (the whole
     index looked at), an id prefix, a stderr word; against GET /api/jobs?limit=1 (the HTTP floor)
     and a Python substring scan of the same texts in memory. Plus the server's RSS with them.
"""
import json, os, signal, subprocess, sys, tempfile, time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BIN, ROOT, free_port, machine_line, redis_info, resp, start_redis, stop_all, wait  # noqa: E402
from bench_agent import AGENT_BIN, commandstats, llen  # noqa: E402
from bench_control import http, pipe  # noqa: E402

JOBS = int(os.environ.get("JOBS", "3000"))
SEARCH_JOBS = int(os.environ.get("SEARCH_JOBS", "100000"))


def agent(tmp, rport, queue, handler, conc, history=True):
    d = tempfile.mkdtemp(dir=tmp)
    api = free_port()
    hist = "" if history else ", history: { enabled: false }"
    with open(os.path.join(d, "agent.yaml"), "w") as f:
        f.write(f'api: {{ listen: "127.0.0.1:{api}" }}\nagent: {{ max_concurrent: 64 }}\npipelines:\n'
                f'  - {{ id: p, queue: {queue}, handler: {json.dumps(handler)}, concurrency: {conc}{hist} }}\n')
    env = dict(os.environ, CONFIG_DIR=d, REDIS_HOST="127.0.0.1", REDIS_PORT=str(rport), RUST_LOG="warn",
               AGENT_ID=f"bench-{api}")
    p = subprocess.Popen([AGENT_BIN, "--config", os.path.join(d, "agent.yaml")], env=env)
    base = f"http://127.0.0.1:{api}"
    wait("agent api", lambda: http("GET", f"{base}/health")[0] == 200)
    return p, base


def run_jobs(tmp, rport, queue, handler, conc, n, history, items=None):
    """Runs n jobs through one agent; jobs/s and Redis commands per job."""
    p, base = agent(tmp, rport, queue, handler, conc, history)
    time.sleep(0.5)
    before = commandstats(rport)
    items = items or [f"{queue}-{i}" for i in range(n)]
    pipe(rport, [resp("LPUSH", f"queue:{queue}", *items[j:j + 1000]) for j in range(0, n, 1000)])
    t0 = time.perf_counter()
    wait("drained", lambda: json.loads(http("GET", f"{base}/pipelines/p")[1])["processed_count"] >= n, timeout=900)
    rate = n / (time.perf_counter() - t0)
    after = commandstats(rport)
    cmds = sum(after.get(k, 0) - before.get(k, 0) for k in after if k not in ("info", "lpush")) / n
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    return rate, cmds


def used_memory(rport):
    return int(redis_info(rport, "used_memory"))


def seed(rport, n):
    """n records in the agent's layout: 1 KiB stdout, one in 100 with a distinctive stderr."""
    out = ("frame rendered " * 70)[:1024]
    cmds = []
    now = int(time.time() * 1000)
    for i in range(n):
        jid = f"job-{i:07d}"
        err = "disk on fire\n" if i % 100 == 0 else ""
        attempt = json.dumps({"n": 1, "agent_id": "bench", "started_at": "2026-12-07T00:00:00Z",
                              "finished_at": "2026-12-07T00:00:01Z", "exit_code": 0, "outcome": "succeeded"})
        fields = ["id", jid, "queue", f"q{i % 4}", "status", "succeeded", "attempts", "1", "agent_id", "bench",
                  "started_at", "2026-12-07T00:00:00Z", "finished_at", "2026-12-07T00:00:01Z", "duration_ms", "1000",
                  "exit_code", "0", "item", json.dumps({"id": jid, "payload": f"frame {i} of scene {i % 12}"}),
                  "updated", str(now + i), "a:1", attempt, "o:1", out + f" {i}\n"]
        if err:
            fields += ["e:1", err]
        cmds.append(resp("HSET", f"agent-office:{{jobs}}:job:{jid}", *fields))
        cmds.append(resp("ZADD", "agent-office:{jobs}:all", str(now + i), jid))
        if len(cmds) >= 20000:
            pipe(rport, cmds)
            cmds = []
    pipe(rport, cmds)
    return out


def timed_get(url, runs=15):
    times = []
    body = None
    for _ in range(runs):
        t0 = time.perf_counter()
        status, body = http("GET", url)
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200, (url, status, body)
    times.sort()
    return times[len(times) // 2], json.loads(body)


def main():
    for b in (BIN, AGENT_BIN):
        if not os.path.exists(b):
            raise SystemExit(f"{b} missing: run scripts/bench-agent.sh (it builds first)")
    print(machine_line())
    tmp = tempfile.mkdtemp(prefix="ao-bench-jobs-")
    rport = free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp))

        # 1. History on against off, same agent, same handler.
        on, on_cmds = run_jobs(tmp, rport, "hist-on", ["true"], 8, JOBS, True)
        off, off_cmds = run_jobs(tmp, rport, "hist-off", ["true"], 8, JOBS, False)
        print(json.dumps({"bench": "jobs/s with history on, handler `true`, concurrency 8", "jobs": JOBS,
                          "history_on_jobs_per_s": round(on), "reference_history_off_jobs_per_s": round(off),
                          "ratio": round(on / off, 2), "target_ratio_at_least": 0.8,
                          "redis_commands_per_job_on": round(on_cmds, 2), "redis_commands_per_job_off": round(off_cmds, 2)}))
        sys.stdout.flush()

        # 2. Memory of 10,000 jobs' history with 1 KiB of output each.
        subprocess.run(["redis-cli", "-p", str(rport), "FLUSHALL"], check=True, capture_output=True)
        text = os.path.join(tmp, "out.txt")
        with open(text, "w") as f:
            f.write(("render step done " * 64)[:1023] + "\n")
        n = 10_000
        items = [json.dumps({"id": f"mem-{i:05d}", "payload": f"frame {i}"}) for i in range(n)]
        base_mem = used_memory(rport)
        pipe(rport, [resp("LPUSH", "queue:ref", *items[j:j + 1000]) for j in range(0, n, 1000)])
        list_mem = used_memory(rport) - base_mem
        subprocess.run(["redis-cli", "-p", str(rport), "DEL", "queue:ref"], check=True, capture_output=True)
        base_mem = used_memory(rport)
        run_jobs(tmp, rport, "mem", ["cat", text], 8, n, True, items)
        total = used_memory(rport) - base_mem
        results = int(subprocess.run(["redis-cli", "-p", str(rport), "MEMORY", "USAGE", "agent-office:results"],
                                     capture_output=True, text=True).stdout.strip() or 0)
        print(json.dumps({"bench": "Redis memory, history of 10,000 jobs with 1 KiB of output each",
                          "history_and_results_mib": round(total / 2**20, 1),
                          "of_which_results_stream_mib": round(results / 2**20, 1),
                          "per_job_bytes": round(total / n), "target_mib_at_most": 30,
                          "reference_same_items_in_a_list_mib": round(list_mem / 2**20, 2),
                          "ratio": round(total / max(list_mem, 1), 1)}))
        sys.stdout.flush()

        # 3. Search at 100,000 retained jobs, through the release server.
        subprocess.run(["redis-cli", "-p", str(rport), "FLUSHALL"], check=True, capture_output=True)
        seed(rport, SEARCH_JOBS)
        hport = free_port()
        env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{rport}", RUST_LOG="warn", API_ONLY="true",
                   LEPTOS_SITE_ADDR=f"127.0.0.1:{hport}", LEPTOS_OUTPUT_NAME="agent-office",
                   LEPTOS_SITE_ROOT=os.path.join(ROOT, "target", "site"), LEPTOS_SITE_PKG_DIR="pkg")
        server = subprocess.Popen([BIN], env=env)
        procs.append(server)
        base = f"http://127.0.0.1:{hport}"
        wait("server", lambda: http("GET", f"{base}/healthz")[0] == 200)
        t0 = time.perf_counter()
        newest = f"job-{SEARCH_JOBS - 1:07d}"
        wait("the index holds every job", lambda: json.loads(http("GET", f"{base}/api/jobs?q={newest}")[1])["jobs"],
             timeout=300)
        loaded = time.perf_counter() - t0
        floor, _ = timed_get(f"{base}/api/jobs?limit=1")
        figures = {}
        for name, q, want in [("a word no job has (whole index)", "nothing like this", 0),
                              ("id prefix", newest[:-1], 10),
                              ("stderr word (1 job in 100)", "disk on fire", 50)]:
            ms, reply = timed_get(f"{base}/api/jobs?q={urllib.parse.quote(q)}")
            assert len(reply["jobs"]) == want, (q, len(reply["jobs"]))
            figures[name] = round(ms, 1)
        out = ("frame rendered " * 70)[:1024]
        texts = [f"job-{i:07d}\nframe {i} of scene {i % 12}\n{out}" for i in range(SEARCH_JOBS)]
        t0 = time.perf_counter()
        hits = sum(1 for t in texts if "nothing like this" in t)
        py_ms = (time.perf_counter() - t0) * 1000
        rss = 0
        with open(f"/proc/{server.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
        print(json.dumps({"bench": f"search over {SEARCH_JOBS:,} retained jobs (GET /api/jobs?q=, p50 of 15)",
                          "ms": figures, "target_ms_at_most": 200,
                          "reference_http_floor_ms": round(floor, 1),
                          "reference_python_scan_of_the_same_texts_ms": round(py_ms, 1), "python_hits": hits,
                          "ratio_whole_index_to_http_floor": round(figures["a word no job has (whole index)"] / max(floor, 0.01), 1),
                          "index_first_load_s": round(loaded, 1), "server_rss_mib": round(rss)}))
    finally:
        stop_all(procs, tmp)


if __name__ == "__main__":
    main()
