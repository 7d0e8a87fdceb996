#!/usr/bin/env python3
"""The collector against the floor (BENCHMARKS.md "Collector at the floor").

Each scenario: a fresh redis-server with N workers, nine in ten beating (each heartbeat is
rewritten every 10 s, a tenth of the fleet per second, as a real fleet does) and one in ten
down (a stale beat left without a TTL); every worker has a queue, a dead-letter list and two
processing lists; plus M unrelated keys. The release server runs with default settings.

After a warm-up (WARMUP_S of cycles, not counted: the first pass of discovery, of the trends'
flush, of the allocator), ROUNDS rounds, each: the mean collector cycle over a WINDOW_S window
(`agent_office_collector_cycle_seconds`) and the floor with the server and the beater paused —
the same keys read bare by `redis-cli --pipe`, the median of three samples taken just before the
window and three just after. The windows are short and many because this kind of machine changes
speed by half within seconds (the bare reads alone go from 46 to 100 ms on an idle machine): a
ratio holds only between figures taken seconds apart.
  - floor (MGET): one MGET of every heartbeat key + LLEN of every list (the issue's floor);
  - floor (same commands): what the collector sends, a bounded GETRANGE per heartbeat + the LLENs.
Printed: the median of the rounds, the median ratio and the spread of the rounds' ratios, the cycle's split into read / build /
publish, how often the snapshot refreshes, the server's RSS and CPU, and the size of the whole
/nodes body.
"""
import json, os, signal, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (BIN, free_port, http_get, machine_line, metric, resp, rss_kib,  # noqa: E402
                   server_env, start_redis, stop_all, wait)

SCENARIOS = [(6, 0), (6, 1_000_000), (1_000, 0), (1_000, 1_000_000), (10_000, 0), (10_000, 1_000_000),
             (100_000, 0), (100_000, 1_000_000)]
ROUNDS = 9
WINDOW_S = 4
WARMUP_S = 20
LIMIT = 8192  # MAX_HEARTBEAT_BYTES


def names_for(n):
    return (["music-render", "video-render", "image-render", "insta-render", "task-watcher", "ai_trade"]
            if n == 6 else [f"bench-{i // 100:04d}-{i % 100:02d}" for i in range(n)])


def beat(name, age_s=0):
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age_s))
    return json.dumps({"name": name, "kind": "render", "state": "idle", "ts": ts,
                       "last_job_at": None, "jobs_done": 1, "jobs_failed": 0})


def send(port, cmds):
    """Sends RESP commands over one socket and reads every reply (a pipeline)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall("".join(cmds).encode())
        f = s.makefile("rb")
        for _ in cmds:
            line = f.readline()
            if line[:1] == b"$" and int(line[1:]) >= 0:
                f.read(int(line[1:]) + 2)


def fill(port, names):
    cmds = []
    for i, n in enumerate(names):
        if i % 10 == 9:
            # Down: a beat two hours old on a key someone left without a TTL.
            cmds.append(resp("SET", f"worker:{n}:heartbeat", beat(n, age_s=7200)))
        else:
            cmds.append(resp("SET", f"worker:{n}:heartbeat", beat(n), "EX", 45))
        cmds.append(resp("RPUSH", f"queue:{n}", "job"))
        cmds.append(resp("RPUSH", f"dead_letter:queue:{n}", "job") if i % 50 == 0 else resp("DEL", f"dead_letter:queue:{n}"))
        cmds.append(resp("RPUSH", f"processing:queue:{n}:c1", "job"))
        cmds.append(resp("RPUSH", f"processing:queue:{n}:c2", "job"))
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(cmds).encode(), check=True,
                   capture_output=True)


class Beater(threading.Thread):
    """Rewrites a tenth of the beating workers' heartbeats every second (a 10 s beat)."""

    def __init__(self, port, names):
        super().__init__(daemon=True)
        self.port, self.names = port, [n for i, n in enumerate(names) if i % 10 != 9]
        self.run_flag, self.stop_flag = threading.Event(), threading.Event()
        self.run_flag.set()

    def run(self):
        tick = 0
        while not self.stop_flag.is_set():
            if self.run_flag.is_set():
                part = [n for j, n in enumerate(self.names) if j % 10 == tick % 10]
                send(self.port, [resp("SET", f"worker:{n}:heartbeat", beat(n), "EX", 45) for n in part])
                tick += 1
            time.sleep(1)


def pipe_s(port, cmds):
    t = time.perf_counter()
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=cmds, check=True, capture_output=True)
    return time.perf_counter() - t


def floor_samples(port, names, samples=3):
    """`samples` timings of each floor (ms): (MGET floor, same-commands floor)."""
    lists = []
    for n in names:
        lists += [resp("LLEN", f"queue:{n}"), resp("LLEN", f"dead_letter:queue:{n}"),
                  resp("LLEN", f"processing:queue:{n}:c1"), resp("LLEN", f"processing:queue:{n}:c2")]
    mget = "".join([resp("GET", "queue:paused"), resp("MGET", *[f"worker:{n}:heartbeat" for n in names])] + lists).encode()
    same = "".join([resp("GET", "queue:paused")] + [resp("GETRANGE", f"worker:{n}:heartbeat", 0, LIMIT) for n in names]
                   + lists).encode()
    return [pipe_s(port, mget) * 1000 for _ in range(samples)], [pipe_s(port, same) * 1000 for _ in range(samples)]


def median(xs):
    xs = sorted(xs)
    return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PHASES = ("read", "build", "publish")


def cycle_window(base, seconds):
    """The mean cycle over `seconds`, cycles per second, and the mean cycle's split by phase."""
    def sample():
        phases = [metric(base, f'agent_office_collector_phase_seconds_total{{phase="{p}"}}') or 0.0
                  for p in PHASES]
        return (metric(base, "agent_office_collector_cycle_seconds_count"),
                metric(base, "agent_office_collector_cycle_seconds_sum"), phases)
    c0, s0, p0 = sample()
    time.sleep(seconds)
    c1, s1, p1 = sample()
    cycles = max(c1 - c0, 1)
    split = [(b - a) / cycles * 1000 for a, b in zip(p0, p1)]
    return (s1 - s0) / cycles * 1000, (c1 - c0) / seconds, split


def scenario(n, m):
    tmp = tempfile.mkdtemp(prefix="ao-floor-")
    rport, hport = free_port(), free_port()
    procs = []
    try:
        procs.append(start_redis(rport, tmp, debug=True))
        if m:
            subprocess.run(["redis-cli", "-p", str(rport), "DEBUG", "POPULATE", str(m), "noise"], check=True,
                           capture_output=True)
        names = names_for(n)
        fill(rport, names)
        beater = Beater(rport, names)
        beater.start()
        env = server_env(rport, hport)
        server = subprocess.Popen([BIN], env=env)
        procs.append(server)
        base = f"http://127.0.0.1:{hport}"
        want = len(names) if n != 6 else 6
        wait("every worker listed", lambda: json.loads(http_get(f"{base}/api/agent-office/nodes?limit=1", gzip=False))
             ["summary"]["total"] >= want, timeout=300)
        time.sleep(WARMUP_S)  # discovery's passes with their processing lists, the first trends flush
        def paused_floors():
            # Server and beater paused: Redis idle but for the floor's own reads.
            server.send_signal(signal.SIGSTOP)
            beater.run_flag.clear()
            time.sleep(1.2)  # let a beater write in flight finish
            f = floor_samples(rport, names)
            beater.run_flag.set()
            server.send_signal(signal.SIGCONT)
            time.sleep(2)  # the cycle caught by the pause ends (timed out) before the next window
            return f

        # A round's floor is the median of the samples just before and just after its window, so
        # a machine that changes speed in between moves both sides of the ratio alike.
        rounds = []
        before = paused_floors()
        for _ in range(ROUNDS):
            cpu0, t0 = cpu_s(server.pid), time.time()
            cycle, per_s, split = cycle_window(base, WINDOW_S)
            cpu = (cpu_s(server.pid) - cpu0) / (time.time() - t0) * 100
            after = paused_floors()
            mget, same = median(before[0] + after[0]), median(before[1] + after[1])
            rounds.append((cycle, mget, same, per_s, cpu, split))
            before = after
        body = http_get(f"{base}/api/agent-office/nodes")
        mem = rss_kib(server.pid)
        beater.stop_flag.set()
        med = lambda i: sorted(r[i] for r in rounds)[ROUNDS // 2]  # noqa: E731
        ratios_mget = sorted(r[0] / r[1] for r in rounds)
        ratio_mget = ratios_mget[ROUNDS // 2]
        ratio_same = sorted(r[0] / r[2] for r in rounds)[ROUNDS // 2]
        return {
            "workers": n, "unrelated_keys": m,
            "cycle_ms": round(med(0), 2), "floor_mget_ms": round(med(1), 2), "ratio_to_mget": round(ratio_mget, 2),
            "ratio_to_mget_spread": [round(ratios_mget[0], 2), round(ratios_mget[-1], 2)],
            "floor_same_commands_ms": round(med(2), 2), "ratio_to_same": round(ratio_same, 2),
            "rounds": [[round(x, 1) for x in r[:3]] for r in rounds],
            # What the mean cycle is made of (ms): the round trip with its parse, the snapshot
            # build, the publish — the part of the cycle above the floor is build + publish.
            "cycle_split_ms": {p: round(sorted(r[5][i] for r in rounds)[ROUNDS // 2], 2)
                               for i, p in enumerate(PHASES)},
            "snapshots_per_s": round(med(3), 2), "server_cpu_percent": round(med(4), 1),
            "server_rss_mib": round(mem["VmRSS"] / 1024, 1), "server_peak_rss_mib": round(mem["VmHWM"] / 1024, 1),
            "whole_nodes_gzip_kib": round(len(body) / 1024, 1),
        }
    finally:
        stop_all(procs, tmp)


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run scripts/bench.sh (it builds first)")
    picked = SCENARIOS
    if len(sys.argv) > 1:
        picked = [tuple(int(x) for x in a.split(":")) for a in sys.argv[1:]]
    print(machine_line())
    for n, m in picked:
        print(json.dumps(scenario(n, m)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
