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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from structlog.testing import capture_logs

from app.main import create_app
from app.platform.ratelimit import build_rate_limiter, redis_client_from_settings
from tests.conftest import Backend
from tests.redis_server import ONE_CONNECTION, RedisServer, hold_the_only_connection

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

QUERY = "{ __typename }"
CLIENT_IP = "10.9.9.9"
UNREACHABLE = "rate limit store unreachable; limiting per process"


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
    settings = backend.settings(redis_url=redis_server.url, **ONE_CONNECTION)
    redis = redis_client_from_settings(settings)
    assert redis is not None
    limiter = build_rate_limiter(settings, redis)
    budget = {"capacity": 10, "restore_rate": 0.001}
    try:
        holder = await hold_the_only_connection(redis)  # for half a second
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
