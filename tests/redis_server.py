"""A redis-server of a test's own on a free loopback port (the shared Redis is never stopped).

Tests that count what Redis was asked, or stop it, start one: `redis_server` (tests/conftest.py)
is the fixture, `RedisServer` the process.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.platform.redis_pipe import RedisPipe

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server of this test's own, without persistence, that can be killed and restarted."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait (at most 10 s) until it answers PING."""
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with SyncRedis.from_url(self.url, socket_connect_timeout=0.2) as client:
                    client.ping()
                return
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """Kill it (SIGKILL: no goodbye to the clients) and wait for it to end."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def keys(self) -> list[str]:
        """Every key it holds."""
        with SyncRedis.from_url(self.url) as client:
            return sorted(key.decode() for key in client.keys("*"))


# Settings of a client whose pool has one connection that a test can hold (a busy pool),
# waiting briefly for it and never failing over for the length of a test.
ONE_CONNECTION: dict[str, Any] = {
    "rate_limit_key_prefix": "rl:",
    "redis_pool_size": 1,
    "redis_max_in_flight": 1,  # the hot path's multiplexed connection (app/platform/redis_pipe.py)
    "redis_pool_timeout_seconds": 0.05,
    "redis_failover_pause_seconds": 60,
}


async def hold_the_only_connection(redis: Redis | RedisPipe) -> asyncio.Task[Any]:
    """Hold the pool's one connection (or the pipe's one slot) with a blocking command for 0.5 s."""
    key = f"held-{uuid.uuid4().hex}"
    if isinstance(redis, RedisPipe):
        holder = asyncio.ensure_future(redis.execute("BLPOP", key, 0.5))
    else:
        holder = asyncio.ensure_future(redis.blpop([key], timeout=0.5))
    await asyncio.sleep(0.05)
    return holder


__all__ = ["ONE_CONNECTION", "RedisServer", "hold_the_only_connection", "needs_redis_server"]
