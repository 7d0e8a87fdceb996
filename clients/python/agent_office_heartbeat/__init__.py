"""Contract 1 heartbeats for Python workers (the observability plan's Part A).

A worker that already exists keeps its loop and adds one task::

    stats = WorkerStats()
    asyncio.create_task(heartbeat_loop(redis, "image-render", "render", stats))
    ...
    stats.busy = True; ...; stats.jobs_done += 1; stats.last_job_at = utc_now_iso()

``redis`` is any asyncio client with ``get(key)`` and ``set(key, value, ex=seconds)`` —
``redis.asyncio.Redis(decode_responses=False)`` as the plan uses, or the dependency-free
:class:`agent_office_heartbeat.resp.Redis` shipped beside this module. Every beat is
``SET worker:<name>:heartbeat <json> EX 45`` every 15 s (``HEARTBEAT_INTERVAL``,
``HEARTBEAT_TTL`` in the environment change both), so a worker that stops reads down within
the TTL.
"""

import asyncio
import datetime as dt
import json
import logging
import os

__all__ = [
    "WorkerStats",
    "utc_now_iso",
    "build_payload",
    "render_state",
    "heartbeat_loop",
    "DEFAULT_INTERVAL",
    "DEFAULT_TTL",
]

logger = logging.getLogger("agent_office_heartbeat")

DEFAULT_INTERVAL = int(os.getenv("HEARTBEAT_INTERVAL", "15"))
DEFAULT_TTL = int(os.getenv("HEARTBEAT_TTL", "45"))


class WorkerStats:
    """The counters the worker's own loop updates and the heartbeat reads."""

    def __init__(self):
        self.busy = False
        self.jobs_done = 0
        self.jobs_failed = 0
        self.last_job_at = None  # ISO-8601 UTC string, or None


def utc_now_iso() -> str:
    """Now, the way the contract writes a time: ``2026-06-29T00:00:00Z``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_payload(name: str, kind: str, state: str, stats: WorkerStats, extra=None) -> str:
    """The JSON of one beat: the contract's fields, then ``extra`` (the watcher's ``mode``)."""
    payload = {
        "name": name,
        "kind": kind,
        "state": state,
        "ts": utc_now_iso(),
        "last_job_at": stats.last_job_at,
        "jobs_done": stats.jobs_done,
        "jobs_failed": stats.jobs_failed,
    }
    if extra:
        payload.update(extra)
    return json.dumps(payload)


async def render_state(redis, stats: WorkerStats, paused_key: str = "queue:paused") -> str:
    """A render worker's state: ``paused`` while the watcher's flag is ``"1"``, else busy/idle."""
    if await redis.get(paused_key) == b"1":
        return "paused"
    return "busy" if stats.busy else "idle"


async def heartbeat_loop(
    redis,
    name,
    kind,
    stats,
    *,
    interval=DEFAULT_INTERVAL,
    ttl=DEFAULT_TTL,
    paused_key="queue:paused",
    state_fn=None,
):
    """Beats until cancelled. ``state_fn(redis, stats)`` may give ``(state, extra)`` for kinds
    other than render; a failed beat is logged and tried again at the next interval."""
    key = f"worker:{name}:heartbeat"
    logger.info("heartbeat start name=%s ttl=%ds", name, ttl)
    while True:
        try:
            if state_fn is not None:
                state, extra = await state_fn(redis, stats)
            else:
                state, extra = await render_state(redis, stats, paused_key), None
            await redis.set(key, build_payload(name, kind, state, stats, extra), ex=ttl)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 — a worker must outlive a Redis hiccup
            logger.exception("heartbeat failed name=%s", name)
        await asyncio.sleep(interval)
