"""The Python heartbeat module against a real redis-server and the real agent-office server:
its beats read alive with their counters, a stopped worker reads down within the TTL, and the
plan's own assertions hold (``alive is True and state == "idle"`` on its fixture)."""

import asyncio
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from agent_office_heartbeat import WorkerStats, build_payload, heartbeat_loop, render_state
from agent_office_heartbeat.resp import Redis

ROOT = pathlib.Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Until something listens on ``port`` (redis-server takes a moment to bind)."""
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def server_binary() -> pathlib.Path:
    given = os.environ.get("AO_SERVER_BIN")
    if given:
        return pathlib.Path(given)
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "agent-office"
        if p.exists():
            return p
    raise unittest.SkipTest("no agent-office binary: build it first (scripts/test.sh does)")


class WithRedisAndServer(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ao-py-")
        cls.redis_port = free_port()
        cls.redis = subprocess.Popen(
            ["redis-server", "--port", str(cls.redis_port), "--save", "", "--dir", cls.dir],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(cls.redis_port)
        cls.http_port = free_port()
        env = dict(
            os.environ,
            REDIS_URL=f"redis://127.0.0.1:{cls.redis_port}",
            RUST_LOG="warn",
            API_ONLY="true",
            LEPTOS_OUTPUT_NAME="agent-office",
            LEPTOS_SITE_ROOT=str(ROOT / "target" / "site"),
            LEPTOS_SITE_PKG_DIR="pkg",
            LEPTOS_SITE_ADDR=f"127.0.0.1:{cls.http_port}",
            COLLECT_INTERVAL="100ms",
            DISCOVER_INTERVAL="200ms",
        )
        cls.server = subprocess.Popen([str(server_binary())], env=env, stdout=subprocess.DEVNULL)
        deadline = time.time() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{cls.http_port}/healthz", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.server, cls.redis):
            p.kill()
            p.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def nodes(self) -> dict:
        url = f"http://127.0.0.1:{self.http_port}/api/agent-office/nodes"
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())

    async def worker(self, name: str, check, timeout=10.0) -> dict:
        deadline = time.time() + timeout
        while True:
            w = next((w for w in self.nodes()["workers"] if w["name"] == name), None)
            if w is not None and check(w):
                return w
            self.assertLess(time.time(), deadline, f"{name}: {w}")
            await asyncio.sleep(0.1)

    async def asyncSetUp(self):
        self.r = Redis(port=self.redis_port)
        await self.r.execute("FLUSHALL")

    async def asyncTearDown(self):
        await self.r.close()

    # The plan's own unit tests, as it writes them.
    def test_build_payload_has_contract_fields(self):
        s = WorkerStats()
        s.jobs_done = 3
        s.last_job_at = "2026-06-29T00:00:00Z"
        payload = json.loads(build_payload("image-render", "render", "idle", s))
        for k in ("name", "kind", "state", "ts", "last_job_at", "jobs_done", "jobs_failed"):
            self.assertIn(k, payload)
        self.assertEqual(payload["jobs_done"], 3)
        self.assertTrue(payload["ts"].endswith("Z"))

    def test_build_payload_merges_extra(self):
        payload = json.loads(
            build_payload("task-watcher", "watcher", "free", WorkerStats(), extra={"mode": "free"})
        )
        self.assertEqual(payload["mode"], "free")

    async def test_render_state_follows_the_pause_flag_and_the_work(self):
        s = WorkerStats()
        s.busy = True
        await self.r.set("queue:paused", "1", ex=30)
        self.assertEqual(await render_state(self.r, s), "paused")
        await self.r.execute("DEL", "queue:paused")
        self.assertEqual(await render_state(self.r, s), "busy")
        s.busy = False
        self.assertEqual(await render_state(self.r, s), "idle")

    async def test_beats_read_alive_with_their_counters_and_a_stop_reads_down(self):
        stats = WorkerStats()
        stats.jobs_done, stats.jobs_failed = 3, 1
        stats.last_job_at = "2026-12-01T00:00:00Z"
        task = asyncio.create_task(
            heartbeat_loop(self.r, "image-render", "render", stats, interval=0.3, ttl=2)
        )
        img = await self.worker("image-render", lambda w: w["alive"] and w["jobs_done"] == 3)
        # The plan's reader assertion.
        self.assertTrue(img["alive"] is True and img["state"] == "idle", img)
        self.assertEqual((img["jobs_failed"], img["last_job_at"]), (1, "2026-12-01T00:00:00Z"))
        stats.busy = True
        await self.worker("image-render", lambda w: w["state"] == "busy")
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        # Stopped: its key lives out its TTL (2 s here, 45 s by default), then it is down.
        down = await self.worker("image-render", lambda w: not w["alive"], timeout=6)
        self.assertIsNone(down["state"])

    async def test_the_plans_fixture_reads_alive(self):
        fixture = {
            "name": "video-render", "kind": "render", "state": "idle",
            "ts": "2026-06-29T00:00:00Z", "last_job_at": None, "jobs_done": 0, "jobs_failed": 0,
        }
        await self.r.set("worker:video-render:heartbeat", json.dumps(fixture), ex=45)
        img = await self.worker("video-render", lambda w: w["alive"])
        await asyncio.sleep(0.5)  # past the server's question about the key's TTL
        img = await self.worker("video-render", lambda w: True)
        self.assertTrue(img["alive"] is True and img["state"] == "idle", img)


if __name__ == "__main__":
    unittest.main()
