"""A dependency-free asyncio Redis client: the two commands a heartbeat needs, over RESP.

For workers that do not have ``redis`` installed; with it, pass ``redis.asyncio.Redis``
instead. Replies come back as bytes (``decode_responses=False``, as the plan's workers use).
"""

import asyncio

__all__ = ["Redis", "RedisError"]


class RedisError(Exception):
    """An error reply from Redis, or a connection that broke."""


class Redis:
    def __init__(self, host="127.0.0.1", port=6379, password=None):
        self.host, self.port, self.password = host, port, password
        self._reader = self._writer = None
        self._lock = asyncio.Lock()

    async def get(self, key):
        return await self.execute("GET", key)

    async def set(self, key, value, ex=None):
        args = ["SET", key, value] + (["EX", str(ex)] if ex is not None else [])
        return await self.execute(*args)

    async def execute(self, *args):
        async with self._lock:
            try:
                if self._writer is None:
                    await self._connect()
                return await self._call(args)
            except (OSError, asyncio.IncompleteReadError) as e:
                await self.close()
                raise RedisError(f"redis {self.host}:{self.port}: {e}") from e

    async def close(self):
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _connect(self):
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        if self.password:
            await self._call(["AUTH", self.password])

    async def _call(self, args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self._writer.write(b"".join(out))
        await self._writer.drain()
        return await self._reply()

    async def _reply(self):
        line = (await self._reader.readuntil(b"\r\n"))[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = await self._reader.readexactly(n + 2)
            return data[:-2]
        if kind == b"*":
            return [await self._reply() for _ in range(int(rest))]
        raise RedisError(f"unexpected reply {line!r}")
