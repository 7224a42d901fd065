"""Redis as a dependency, not a switch (issue 9, item 4).

Each test starts a redis-server of its own on a free loopback port (the shared one is
never stopped): a Redis outage falls back to per-process buckets and logs why, a
restart is used again by the next request (dead pooled connections are replaced, not
reported as an outage), and a pool with no free connection makes requests wait and
then refuses them instead of switching to per-process buckets.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from structlog.testing import capture_logs

from app.main import create_app
from app.platform.ratelimit import build_rate_limiter, redis_client_from_settings
from tests.conftest import Backend

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

QUERY = "{ __typename }"
CLIENT_IP = "10.9.9.9"
UNREACHABLE = "rate limit store unreachable; limiting per process"


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


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server of this test's own; killed afterwards."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@asynccontextmanager
async def _client(
    backend: Backend, redis_url: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(
        backend.settings(
            redis_url=redis_url,
            rate_limit_key_prefix="rl:",
            rate_limit_capacity=1000,
            rate_limit_restore_rate=0.001,
            **overrides,
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000)),
            base_url="http://shopgraph.test",
        ) as http,
    ):
        yield http


async def _ask(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/graphql", json={"query": QUERY})


BUCKET = f"rl:ip:{CLIENT_IP}"


async def test_an_outage_falls_back_and_the_next_request_after_restart_uses_redis(
    backend: Backend, redis_server: RedisServer
) -> None:
    async with _client(backend, redis_server.url, redis_failover_pause_seconds=0) as http:
        assert (await _ask(http)).status_code == 200
        assert redis_server.keys() == [BUCKET]

        redis_server.kill()
        with capture_logs() as logs:
            during = await _ask(http)
        redis_server.start()  # empty: no persistence
        after = await _ask(http)

        assert during.status_code == 200  # answered from this process's buckets
        [warning] = [entry for entry in logs if entry["event"] == UNREACHABLE]
        assert warning["error_type"] == "ConnectionError"
        assert f"connecting to 127.0.0.1:{redis_server.port}" in warning["error"]  # the real cause
        assert after.status_code == 200
        assert redis_server.keys() == [BUCKET]  # the bucket is back in Redis


async def test_a_restart_between_requests_is_no_outage(
    backend: Backend, redis_server: RedisServer
) -> None:
    # a failover would last a minute: the request after the restart must not cause one
    async with _client(backend, redis_server.url, redis_failover_pause_seconds=60) as http:
        assert (await _ask(http)).status_code == 200
        redis_server.kill()
        redis_server.start()
        with capture_logs() as logs:
            after = await _ask(http)

        assert after.status_code == 200
        assert [entry for entry in logs if entry["event"] == UNREACHABLE] == []
        assert redis_server.keys() == [BUCKET]  # the dead pooled connection was replaced


async def test_pool_exhaustion_waits_then_refuses_instead_of_limiting_per_process(
    backend: Backend, redis_server: RedisServer
) -> None:
    settings = backend.settings(
        redis_url=redis_server.url,
        rate_limit_key_prefix="rl:",
        redis_pool_size=1,
        redis_pool_timeout_seconds=0.05,
        redis_failover_pause_seconds=60,
    )
    redis = redis_client_from_settings(settings)
    assert redis is not None
    limiter = build_rate_limiter(settings, redis)
    budget = {"capacity": 10, "restore_rate": 0.001}
    try:
        # the pool's one connection is held by a blocking command for half a second
        holder = asyncio.create_task(redis.blpop([f"held-{uuid.uuid4().hex}"], timeout=0.5))
        await asyncio.sleep(0.05)
        with capture_logs() as logs:
            flood = await asyncio.gather(*(limiter.take("caller", 1, **budget) for _ in range(30)))
        await holder
        after = await limiter.take("caller", 1, **budget)
    finally:
        await redis.aclose()

    # refused while the pool was busy, never served from per-process buckets ...
    assert not any(state.allowed for state in flood)
    assert [entry for entry in logs if entry["event"] == UNREACHABLE] == []
    # ... and the shared bucket, used again at once, lost nothing to the flood
    assert after.allowed
    assert round(after.available) == 9
    assert redis_server.keys() == ["rl:caller"]
