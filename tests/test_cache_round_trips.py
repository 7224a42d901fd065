"""What a response-cache hit asks of Redis: one script, the take and the read together.

Each test has a redis-server of its own (counting commands with INFO commandstats needs a
Redis nobody else uses) and reads the shared seeded catalog. A hit is charged the cost
its response was stored with, not the estimate, and its admission charge, in that one
round trip; it runs no SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis
from structlog.testing import capture_logs

from app.main import create_app
from app.platform.cache import FailoverTaggedCache, RedisTaggedCache
from app.platform.charged_read import RedisChargedReader, SequentialChargedReader
from app.platform.ratelimit import Budget, build_rate_limiter, redis_client_from_settings
from app.platform.redis_pipe import redis_pipe_from_settings
from tests.conftest import Backend
from tests.redis_server import (
    ONE_CONNECTION,
    RedisServer,
    hold_the_only_connection,
    needs_redis_server,
)

pytestmark = needs_redis_server

LISTING = "{ products(first: 100) { edges { node { name category { name } } } } }"
CLIENT_IP = "10.7.7.7"
BUCKET = f"rl:ip:{CLIENT_IP}"


@asynccontextmanager
async def _client(backend: Backend, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = backend.settings(
        redis_url=redis_url,
        cache_enabled=True,
        debug=True,
        rate_limit_key_prefix="rl:",
        rate_limit_capacity=100_000,
        rate_limit_restore_rate=0.001,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000)),
            base_url="http://shopgraph.test",
        ) as http,
    ):
        yield http


def _commands(redis: SyncRedis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (the counting calls excluded).

    Commands a script runs are counted too, under their own names.
    """
    stats: dict[str, Any] = redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }


def _available(redis: SyncRedis) -> float:
    return float(redis.hget(BUCKET, "available") or 0)


async def test_a_hit_is_one_script_that_takes_its_stored_price_and_runs_no_sql(
    backend: Backend, redis_server: RedisServer
) -> None:
    with SyncRedis.from_url(redis_server.url) as redis:
        async with _client(backend, redis_server.url) as http:
            cold = (await http.post("/graphql", json={"query": LISTING})).json()
            assert cold["extensions"]["debug"]["cache"]["response"] == "miss"
            warm = (await http.post("/graphql", json={"query": LISTING})).json()
            assert warm["extensions"]["debug"]["cache"]["response"] == "hit"

            # when the hot query is asked three more times
            before = _available(redis)
            redis.config_resetstat()
            hits = [(await http.post("/graphql", json={"query": LISTING})).json() for _ in range(3)]
            commands = _commands(redis)
            after = _available(redis)

        # then each hit was one script (the take and the read), no other call, no SQL; Redis
        # counts the script's own commands too: the generation, sequence and entry, the bucket
        assert commands == {
            "evalsha": 3,
            "get": 3 * 3,
            "time": 3,
            "hmget": 3,
            "hset": 3,
            "pexpire": 3,
        }, commands
        for hit in hits:
            assert hit["data"] == cold["data"]
            assert hit["extensions"]["debug"]["sqlStatements"] == 0
            assert hit["extensions"]["debug"]["cache"]["response"] == "hit"
        # and each was charged its admission and the cost stored with the response
        cost = hits[-1]["extensions"]["cost"]
        assert cost["actualQueryCost"] == cold["extensions"]["cost"]["actualQueryCost"]
        assert cost["actualQueryCost"] < cost["requestedQueryCost"], "a price, not the estimate"
        assert before - after == pytest.approx(
            3 * (cost["admissionCost"] + cost["actualQueryCost"]), abs=0.05
        )
        assert cost["throttleStatus"]["currentlyAvailable"] == int(after)


async def test_a_miss_reads_with_its_take_and_pays_the_actual_cost(
    backend: Backend, redis_server: RedisServer
) -> None:
    with SyncRedis.from_url(redis_server.url) as redis:
        async with _client(backend, redis_server.url) as http:
            before = _available(redis) or 100_000
            cold = (await http.post("/graphql", json={"query": LISTING})).json()
            after = _available(redis)

    # the miss took its admission and estimate in one script, then refunded the difference
    cost = cold["extensions"]["cost"]
    assert cold["extensions"]["debug"]["cache"]["response"] == "miss"
    assert before - after == pytest.approx(
        cost["admissionCost"] + cost["actualQueryCost"], abs=0.05
    )


async def test_a_busy_pipe_refuses_the_charged_read_instead_of_failing_over(
    backend: Backend, redis_server: RedisServer
) -> None:
    settings = backend.settings(redis_url=redis_server.url, **ONE_CONNECTION)
    redis = redis_client_from_settings(settings)
    pipe = redis_pipe_from_settings(settings)
    assert redis is not None and pipe is not None
    cache = FailoverTaggedCache(RedisTaggedCache(redis, prefix="c:"), pause_seconds=60)
    limiter = build_rate_limiter(settings, redis)
    reader = RedisChargedReader(
        pipe,
        cache,
        bucket_prefix="rl:",
        fallback=SequentialChargedReader(limiter, cache),
        pause_seconds=60,
    )
    budget = Budget("caller", 10, 0.001)
    try:
        first = await reader.read(budget, "k", due=1, requested=2)  # loads the script
        holder = await hold_the_only_connection(pipe)  # its one slot, for half a second
        with capture_logs() as logs:
            flood = await asyncio.gather(
                *(reader.read(budget, "k", due=1, requested=2) for _ in range(30))
            )
        await holder
        with SyncRedis.from_url(redis_server.url) as counting:
            counting.config_resetstat()
            after = await reader.read(budget, "k", due=1, requested=2)
            calls = _commands(counting)["evalsha"]
    finally:
        await redis.aclose()
        await pipe.aclose()

    # refused while the pipe was busy, with no failover to per-process buckets ...
    assert not any(read.bucket.allowed for read in flood)
    assert not [entry for entry in logs if "unreachable" in entry["event"]]
    # ... and the next read was the one script again (a busy pipe is no outage: no pause),
    # on the shared bucket: 10 - 2 * (1 + 2)
    assert calls == 1
    assert first.bucket.allowed and after.bucket.allowed and after.snapshot is not None
    assert round(after.bucket.available) == 4
