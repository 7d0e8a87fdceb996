#!/usr/bin/env python3
"""Control-plane benchmark against a real redis-server and the release server (BENCHMARKS.md).

Prints, each beside a same-run reference and the ratio:
  1. 10,000 registered agents beating + 10,000 workers: collector cycle and round trips,
     against the bare pipelined reads of the same keys (redis-cli --pipe, server paused);
     GET /api/agents latency against GET /healthz.
  2. A command by selector to 1,000 agents: POST -> every target `delivered`, with one Python
     process answering for the whole fleet over Redis (PSUBSCRIBE + XADD to the inbox), against
     the same 1,000 XADD+PUBLISH sent bare.
  3. One command to one live agent in Redis mode: POST -> result in the ledger, p50/p95 of 50,
     against an HTTP POST that the server refuses at once (the HTTP floor).
"""
import json, os, signal, socket, subprocess, sys, tempfile, threading, time, shutil, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BIN, machine_line, server_env, start_redis, stop_all, free_port, heartbeat, metric, redis_info, resp, wait  # noqa: E402

OPERATOR = "bench-operator-token-0123456789"
AGENT = "bench-agent-token-0123456789"


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Resp:
    """The smallest RESP client that does what the bench needs."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def send(self, *args):
        self.s.sendall(resp(*args).encode())

    def read(self):
        line = self.f.readline()
        if not line:
            raise EOFError
        t, rest = line[:1], line[1:-2]
        if t in (b"+", b"-", b":"):
            return rest.decode()
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(line)

    def call(self, *args):
        self.send(*args)
        return self.read()


def pipe(port, cmds):
    t = time.perf_counter()
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(cmds).encode(),
                   check=True, capture_output=True)
    return time.perf_counter() - t


def http(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def timed(f, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.95) - 1]


def record(i):
    return json.dumps({"agent_id": f"agent-{i:05d}", "ip": "10.0.0.1", "hostname": f"host-{i}", "os": "linux",
                       "arch": "x86_64", "version": "0.1.0", "max_concurrent": 4,
                       "labels": {"role": "render" if i < 1000 else "other", "zone": f"z{i % 10}"},
                       "labels_from_operator": False, "registered_at": now_iso(), "updated_at": now_iso()})


def agent_beat(i):
    return json.dumps({"agent_id": f"agent-{i:05d}", "timestamp": now_iso(), "cpu_usage": 10.0, "memory_usage": 20.0,
                       "pipelines": ["image"], "pipeline_stats": [{"id": "image", "status": "running", "processed": i, "errors": 0}],
                       "communication_mode": "redis"})


class Responder:
    """Answers for every agent over Redis: delivered (and a result) for each wake-up."""

    def __init__(self, port, answer_results):
        self.sub, self.out = Resp(port), Resp(port)
        self.sub.call("PSUBSCRIBE", "agent-office:agent:*:commands")
        self.thread = threading.Thread(target=responder, args=(self.sub, self.out, answer_results), daemon=True)
        self.thread.start()

    def stop(self):
        self.sub.s.shutdown(socket.SHUT_RDWR)
        self.thread.join()


def responder(sub, out, answer_results):
    while True:
        try:
            msg = sub.read()
        except (EOFError, OSError):
            return
        if not msg or msg[0] != "pmessage":
            continue
        agent = msg[2].split(":")[2]
        cmd = json.loads(msg[3])
        out.send("XADD", "agent-office:{ctl}:inbox", "*", "msg",
                 json.dumps({"kind": "delivered", "agent_id": agent, "command_id": cmd["command_id"]}))
        if answer_results:
            out.send("XADD", "agent-office:{ctl}:inbox", "*", "msg",
                     json.dumps({"kind": "result", "command_id": cmd["command_id"], "agent_id": agent,
                                 "status": "succeeded", "message": "ok"}))
            out.read()
        out.read()


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run scripts/bench-control.sh (it builds first)")
    agents = int(os.environ.get("AGENTS", "10000"))
    workers = int(os.environ.get("WORKERS", "10000"))
    print(machine_line())
    tmp = tempfile.mkdtemp(prefix="ao-bench-ctl-")
    rport, hport = free_port(), free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp))
        names = [f"bench-{i:05d}" for i in range(workers)]
        cmds = []
        for i, n in enumerate(names):
            cmds.append(resp("SET", f"worker:{n}:heartbeat", heartbeat(n), "EX", 3600))
            if i % 10 == 0:
                cmds.append(resp("RPUSH", f"queue:{n}", "job"))
        for i in range(agents):
            cmds.append(resp("HSET", "agent-office:{ctl}:agents", f"agent-{i:05d}", record(i)))
            cmds.append(resp("SET", f"agent-office:{{ctl}}:beat:agent-{i:05d}", agent_beat(i), "EX", 3600))
        cmds.append(resp("INCR", "agent-office:{ctl}:agents:version"))
        pipe(rport, cmds)
        env = server_env(rport, hport, OPERATOR_TOKEN=OPERATOR, AGENT_TOKEN=AGENT)
        server = subprocess.Popen([BIN], env=env)
        procs.append(server)
        base = f"http://127.0.0.1:{hport}"
        wait("agents listed", lambda: len(json.loads(http("GET", f"{base}/api/agents")[1])["agents"]) == agents)
        wait("workers listed", lambda: len(json.loads(http("GET", f"{base}/api/agent-office/nodes")[1])["workers"]) >= workers)
        time.sleep(3)
        c0, s0 = metric(base, "agent_office_collector_cycle_seconds_count"), metric(base, "agent_office_collector_cycle_seconds_sum")
        time.sleep(5)
        c1, s1 = metric(base, "agent_office_collector_cycle_seconds_count"), metric(base, "agent_office_collector_cycle_seconds_sum")
        cycle_ms = (s1 - s0) / max(c1 - c0, 1) * 1000
        trips = metric(base, "agent_office_collector_round_trips")
        # The floor: the same reads, bare, while the server is paused (median of 5).
        bare = [resp("GET", "queue:paused"), resp("MGET", *[f"worker:{n}:heartbeat" for n in names] + ["worker:music-render:heartbeat"] * 6)]
        bare += [resp("LLEN", f"queue:{n}") for n in names] + [resp("LLEN", f"dead_letter:queue:{n}") for n in names]
        bare += [resp("GET", "agent-office:{ctl}:agents:version"),
                 resp("MGET", *[f"agent-office:{{ctl}}:beat:agent-{i:05d}" for i in range(agents)])]
        server.send_signal(signal.SIGSTOP)
        floors = sorted(pipe(rport, bare) * 1000 for _ in range(5))
        server.send_signal(signal.SIGCONT)
        floor_ms = floors[2]
        agents_p50, agents_p95 = timed(lambda: http("GET", f"{base}/api/agents"), 20)
        health_p50, _ = timed(lambda: http("GET", f"{base}/healthz"), 20)
        print(json.dumps({"bench": "collector with agents", "agents": agents, "workers": workers,
                          "cycle_ms": round(cycle_ms, 2), "round_trips_per_cycle": trips,
                          "bare_reads_ms (redis-cli --pipe, same keys)": round(floor_ms, 2),
                          "ratio": round(cycle_ms / floor_ms, 2),
                          "get_agents_ms_p50": round(agents_p50, 2), "get_agents_ms_p95": round(agents_p95, 2),
                          "get_agents_body_kib": round(len(http("GET", f"{base}/api/agents")[1]) / 1024, 1),
                          "reference_get_healthz_ms_p50": round(health_p50, 2),
                          "server_rss_mib": round(int(open(f"/proc/{server.pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024, 1)}))
        sys.stdout.flush()

        # 2. Selector to 1,000 agents, one responder for the fleet.
        fleet = Responder(rport, False)
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            st, body = http("POST", f"{base}/api/commands", {"type": "pause_pipeline", "pipeline_id": "image",
                                                            "selector": {"matchLabels": {"role": "render"}}}, OPERATOR)
            assert st == 201, body
            cid = json.loads(body)["command_id"]
            post_ms = (time.perf_counter() - t0) * 1000

            def all_delivered():
                c = json.loads(http("GET", f"{base}/api/commands/{cid}")[1])
                return len(c["targets"]) == 1000 and all(x["state"] == "delivered" for x in c["targets"])
            wait("all delivered", all_delivered, timeout=60)
            runs.append(((time.perf_counter() - t0) * 1000, post_ms))
        fleet.stop()
        runs.sort()
        bare_fanout = [resp("XADD", f"bench:stream:{i}", "MAXLEN", "~", 1000, "*", "cmd", "x" * 200) for i in range(1000)]
        bare_fanout += [resp("PUBLISH", f"bench:chan:{i}", "x" * 200) for i in range(1000)]
        fan = sorted(pipe(rport, bare_fanout) * 1000 for _ in range(3))[1]
        print(json.dumps({"bench": "selector to 1,000 agents", "post_to_all_delivered_ms_median_of_3": round(runs[1][0], 1),
                          "post_answer_ms": round(runs[1][1], 1),
                          "reference_bare_1000_xadd_publish_ms": round(fan, 1)}))
        sys.stdout.flush()

        # 3. One command, one live agent, POST -> result in the ledger.
        fleet = Responder(rport, True)
        lat = []
        for _ in range(50):
            t0 = time.perf_counter()
            st, body = http("POST", f"{base}/api/commands", {"type": "pause_pipeline", "pipeline_id": "image",
                                                            "agent_id": "agent-00001"}, OPERATOR)
            cid = json.loads(body)["command_id"]
            while json.loads(http("GET", f"{base}/api/commands/{cid}")[1])["targets"][0]["state"] != "succeeded":
                time.sleep(0.0005)
            lat.append((time.perf_counter() - t0) * 1000)
        fleet.stop()
        lat.sort()
        floor_p50, _ = timed(lambda: http("POST", f"{base}/api/commands", {}, "wrong-token"), 50)
        print(json.dumps({"bench": "one command, one live agent (Redis mode)",
                          "post_to_result_ms_p50": round(lat[25], 2), "post_to_result_ms_p95": round(lat[47], 2),
                          "reference_refused_post_ms_p50 (HTTP floor)": round(floor_p50, 2),
                          "ratio": round(lat[25] / floor_p50, 1)}))
    finally:
        stop_all(procs, tmp)


if __name__ == "__main__":
    main()
