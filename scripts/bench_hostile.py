#!/usr/bin/env python3
"""Hostile-input benchmark against a real redis-server and the release server (BENCHMARKS.md
"Hostile input"). Prints, each beside a same-run reference and the ratio:
  1. the collector cycle at 6 workers with one 100 MB heartbeat value, against the same
     6 workers with ordinary values;
  2. GET /api/agent-office/nodes throughput (wrk) with 1,000 idle push streams open, against
     none open.
"""
import json, os, resource, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BIN, ROOT, machine_line, start_redis, stop_all, free_port, heartbeat, metric, redis_info, wait, wrk  # noqa: E402
from bench_control import Resp, http  # noqa: E402

WORKERS = ["music-render", "video-render", "image-render", "insta-render", "task-watcher", "ai_trade"]
STREAMS = int(os.environ.get("STREAMS", "1000"))


def cycle_ms(base, seconds=5):
    c0, s0 = metric(base, "agent_office_collector_cycle_seconds_count"), metric(base, "agent_office_collector_cycle_seconds_sum")
    time.sleep(seconds)
    c1, s1 = metric(base, "agent_office_collector_cycle_seconds_count"), metric(base, "agent_office_collector_cycle_seconds_sum")
    return (s1 - s0) / max(c1 - c0, 1) * 1000


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run scripts/bench-hostile.sh (it builds first)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(machine_line())
    tmp = tempfile.mkdtemp(prefix="ao-bench-hostile-")
    rport, hport = free_port(), free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp))
        r = Resp(rport)
        for w in WORKERS:
            r.call("SET", f"worker:{w}:heartbeat", heartbeat(w), "EX", 3600)
        env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{rport}", RUST_LOG="warn", API_ONLY="true",
                   LEPTOS_OUTPUT_NAME="agent-office", LEPTOS_SITE_ROOT=os.path.join(ROOT, "target", "site"),
                   LEPTOS_SITE_PKG_DIR="pkg", LEPTOS_SITE_ADDR=f"127.0.0.1:{hport}")
        server = subprocess.Popen([BIN], env=env)
        procs.append(server)
        base = f"http://127.0.0.1:{hport}"
        wait("server", lambda: http("GET", f"{base}/readyz")[0] == 200)
        time.sleep(2)

        # 1. One 100 MB value.
        cycle_ms(base, 3)  # warm-up: the first cycles after start include connection set-up
        plain = cycle_ms(base)
        r.call("SETRANGE", "worker:image-render:heartbeat", 100 * 1024 * 1024 - 1, "x")
        time.sleep(1)
        huge = cycle_ms(base)
        nodes = json.loads(http("GET", f"{base}/api/agent-office/nodes")[1])
        err = next(w.get("error") for w in nodes["workers"] if w["name"] == "image-render")
        print(json.dumps({"bench": "collector cycle, 6 workers, one 100 MB heartbeat value",
                          "cycle_ms": round(huge, 3), "reference_cycle_ms_without": round(plain, 3),
                          "ratio": round(huge / plain, 2), "target_ratio": 2.0,
                          "readyz": http("GET", f"{base}/readyz")[0], "image_render_error": err}))
        sys.stdout.flush()
        r.call("SET", "worker:image-render:heartbeat", heartbeat("image-render"), "EX", 3600)

        # 2. /nodes under wrk with 1,000 idle push streams open.
        none_rps, none_lat = wrk(f"{base}/api/agent-office/nodes")
        held = []
        for _ in range(STREAMS):
            s = socket.create_connection(("127.0.0.1", hport))
            s.sendall(b"GET /api/agent-office/nodes/stream HTTP/1.1\r\nHost: b\r\n\r\n")
            held.append(s)
        ok = sum(1 for s in held if s.recv(12)[9:12] == b"200")
        rps, lat = wrk(f"{base}/api/agent-office/nodes")
        print(json.dumps({"bench": "/nodes throughput with idle push streams open", "streams_open": ok,
                          "req_per_s": round(rps), "p99": lat.get("99"),
                          "reference_req_per_s_no_streams": round(none_rps), "reference_p99": none_lat.get("99"),
                          "ratio": round(rps / none_rps, 2), "target_ratio": 0.8,
                          "server_rss_mib": round(int(open(f"/proc/{server.pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024, 1)}))
        for s in held:
            s.close()
    finally:
        stop_all(procs, tmp)


if __name__ == "__main__":
    main()
