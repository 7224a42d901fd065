"""Cost-based rate limits: buckets per caller, 429 THROTTLED, refunds, tiers, Redis across processes.

In the PostgreSQL mode the apps here use Redis (SHOPGRAPH_TEST_REDIS_URL), each test under
its own key prefix, and delete their keys afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import insert
from starlette.applications import Starlette

from app.context import Viewer
from app.db import Database
from app.main import create_app
from app.models import Partner
from app.platform.persisted_queries import sha256_hex
from app.platform.ratelimit import (
    Budgets,
    FailoverRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from app.platform.tokens import TokenService
from app.settings import Settings
from tests.conftest import (
    PRODUCTION_DATA_KEYS,
    REDIS_URL,
    REQUIRE_SERVICES,
    Backend,
    GraphQLClient,
    signed_in_client,
)
from tests.test_partners import register_documents

ROOT = Path(__file__).resolve().parents[1]
# 2 + 5 x 1 = 7 points, on a catalog of more than 5 products
FIVE_NAMES = "{ products(first: 5) { edges { node { name } } } }"
FIVE_NAMES_COST = 7
# Admission: 1 point for every request, 1 more (its first KB) while a document is new.
ADMIT_NEW, ADMIT_CACHED = 2, 1
PAGE = "{ products(first: 100) { edges { node { name } } } }"
TINY_RESTORE = 0.001  # points per second: nothing comes back during a test
UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "app.asgi:app",
    "--host",
    "127.0.0.1",
    "--no-access-log",
]


async def _delete_keys(url: str, prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture
async def key_prefix(backend: Backend) -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"shopgraph-test:{uuid.uuid4().hex}:"
    yield prefix
    if backend.redis_url:
        await _delete_keys(backend.redis_url, prefix)


async def _clients(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client


def _limited(backend: Backend, key_prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "rate_limit_enabled": True,
        "rate_limit_capacity": 1000,  # the default; the shared test settings raise it
        "rate_limit_restore_rate": TINY_RESTORE,
        "rate_limit_key_prefix": key_prefix,
    }
    values.update(overrides)
    return backend.settings(**values)


@pytest.fixture
async def small_budget(backend: Backend, key_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app where every caller has 20 points and (almost) nothing restores."""
    async for client in _clients(create_app(_limited(backend, key_prefix, rate_limit_capacity=20))):
        yield client


@pytest.fixture
async def full_budget(backend: Backend, key_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the default capacity (1000) that (almost) never restores."""
    async for client in _clients(create_app(_limited(backend, key_prefix))):
        yield client


def _cost(response: httpx.Response) -> dict[str, Any]:
    return response.json()["extensions"]["cost"]  # type: ignore[no-any-return]


# --- over HTTP -----------------------------------------------------------------------------------


async def test_a_burst_past_the_budget_is_throttled_with_retry_after(
    small_budget: httpx.AsyncClient,
) -> None:
    caller = GraphQLClient(small_budget)

    # given two queries of 7 points each, admitted for 2 (new) and 1: 3 of 20 are left
    for _ in range(2):
        assert (await caller.post(FIVE_NAMES)).status_code == 200

    # when the third comes (admitted for 1 point: 2 left)
    response = await caller.post(FIVE_NAMES)

    # then it is refused with 429, THROTTLED and the budget, before it runs
    body = response.json()
    assert response.status_code == 429, body
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "THROTTLED"
    assert "7 points" in error["message"]
    assert int(response.headers["retry-after"]) >= 1
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": FIVE_NAMES_COST,
        "actualQueryCost": 0,
        "admissionCost": ADMIT_CACHED,
        "throttleStatus": {"maximumAvailable": 20, "currentlyAvailable": 2, "restoreRate": 0.001},
    }


async def test_retry_after_says_when_the_cost_fits_again(backend: Backend, key_prefix: str) -> None:
    app = create_app(
        _limited(backend, key_prefix, rate_limit_capacity=10, rate_limit_restore_rate=2)
    )
    async for client in _clients(app):
        caller = GraphQLClient(client)
        assert (await caller.post(FIVE_NAMES)).status_code == 200

        response = await caller.post(FIVE_NAMES)

        # 10 - 7 - 2 (admitted new) - 1 (admitted cached) = 0 left (plus a little
        # restored), 7 needed at 2 per second: 4 seconds (3.5 rounded up)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "4"


async def test_a_query_that_can_never_fit_the_budget_is_too_complex_not_throttled(
    small_budget: httpx.AsyncClient,
) -> None:
    response = await GraphQLClient(small_budget).post(PAGE)

    [error] = response.json()["errors"]
    assert response.status_code == 400
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    # a bucket of 20 less the 1 point every request pays for admission
    assert "the maximum is 19" in error["message"]


async def test_unused_cost_is_given_back(full_budget: httpx.AsyncClient) -> None:
    # when a query asks for 100 products where fewer exist
    response = await GraphQLClient(full_budget).post(PAGE)

    # then only what it returned is spent
    cost = _cost(response)
    edges = response.json()["data"]["products"]["edges"]
    assert cost["requestedQueryCost"] == 102
    assert cost["actualQueryCost"] == 2 + len(edges) < 102
    assert cost["admissionCost"] == ADMIT_NEW
    assert cost["throttleStatus"]["currentlyAvailable"] == 1000 - cost["actualQueryCost"] - 2


async def test_signing_in_does_not_bring_a_fresh_budget_to_an_ip(
    backend: Backend, small_budget: httpx.AsyncClient
) -> None:
    anonymous = GraphQLClient(small_budget)
    for _ in range(2):
        await anonymous.post(FIVE_NAMES)
    assert (await anonymous.post(FIVE_NAMES)).status_code == 429

    customer = await signed_in_client(
        small_budget, backend.settings(), role="CUSTOMER", email="rate-limited@test.example"
    )
    response = await customer.post(FIVE_NAMES)

    # The user's own bucket is full, but the request also takes from the IP's (empty) one.
    assert response.status_code == 429


async def _partner_token(settings: Settings, tier: str) -> tuple[str, str]:
    """A partner's access token, and its name."""
    name = f"rate-{tier}-{uuid.uuid4().hex[:8]}"
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as connection:
            partner_id = (
                await connection.execute(
                    insert(Partner).returning(Partner.id),
                    [
                        {
                            "name": name,
                            "client_id": uuid.uuid4().hex,
                            "secret_hash": "not-used-here",
                            "scopes": [],
                            "rate_tier": tier,
                        }
                    ],
                )
            ).scalar_one()
    finally:
        await db.dispose()
    token, _ = TokenService(settings).issue_partner_token(
        partner_id=partner_id, scopes=[], rate_tier=tier
    )
    return token, name


async def test_partner_tiers_pick_capacity_and_restore_rate(
    backend: Backend, key_prefix: str
) -> None:
    settings = _limited(
        backend, key_prefix, partner_tiers={"standard": (100, 1.0), "premium": (500, 5.0)}
    )
    token, name = await _partner_token(settings, "premium")
    # A partner runs only its trusted documents (tests/test_trusted_documents.py).
    await register_documents(settings, name, "{ __typename }")
    async for client in _clients(create_app(settings)):
        response = await client.post(
            "/graphql",
            json={"documentId": f"sha256:{sha256_hex('{ __typename }')}"},
            headers={"Authorization": f"Bearer {token}"},
        )

        assert response.status_code == 200, response.text
        assert _cost(response)["throttleStatus"] == {
            "maximumAvailable": 500,
            # a trusted document pays no parse: the request's charge only
            "currentlyAvailable": 500 - ADMIT_CACHED,
            "restoreRate": 5.0,
        }


def test_budgets_by_caller() -> None:
    budgets = Budgets(capacity=1000, restore_rate=50.0, tiers={"premium": (5000, 250.0)})

    assert budgets.for_caller(Viewer(partner_id=7, rate_tier="premium"), "10.0.0.1") == (
        budgets.for_caller(Viewer(partner_id=7, rate_tier="premium"), "10.0.0.2")
    )
    premium = budgets.for_caller(Viewer(partner_id=7, rate_tier="premium"), "10.0.0.1")
    assert (premium.key, premium.capacity, premium.restore_rate) == ("partner:7", 5000, 250.0)
    unknown_tier = budgets.for_caller(Viewer(partner_id=8, rate_tier="gold"), "10.0.0.1")
    assert (unknown_tier.capacity, unknown_tier.restore_rate) == (1000, 50.0)
    assert budgets.for_caller(Viewer(user_id=3), "10.0.0.1").key == "user:3&ip:10.0.0.1"
    assert budgets.for_caller(Viewer(), "10.0.0.1").key == "ip:10.0.0.1"


async def test_rate_limits_can_be_switched_off(backend: Backend) -> None:
    settings = backend.settings(rate_limit_enabled=False)
    async for client in _clients(create_app(settings)):
        response = await GraphQLClient(client).post(FIVE_NAMES)

        assert _cost(response) == {
            "requestedQueryCost": FIVE_NAMES_COST,
            "actualQueryCost": FIVE_NAMES_COST,
        }


@pytest.mark.parametrize("env", ["development", "production"])
async def test_rate_limits_are_on_by_default(backend: Backend, env: str) -> None:
    settings = Settings(
        database_url=backend.database_url,
        redis_url=backend.redis_url,
        env=env,
        secret_key="p" * 40,
        rate_limit_key_prefix=f"shopgraph-test:{uuid.uuid4().hex}:",
        **PRODUCTION_DATA_KEYS,
    )
    assert settings.rate_limiting_enabled
    async for client in _clients(create_app(settings)):
        response = await GraphQLClient(client).post("{ __typename }")

        assert _cost(response)["throttleStatus"]["maximumAvailable"] == 1000
    if backend.redis_url:
        await _delete_keys(backend.redis_url, settings.rate_limit_key_prefix)


async def test_an_unreachable_redis_falls_back_to_per_process_buckets(
    backend: Backend, key_prefix: str
) -> None:
    # given Redis is configured but nothing listens there
    settings = _limited(
        backend, key_prefix, redis_url=f"redis://127.0.0.1:{_free_port()}/0", rate_limit_capacity=20
    )
    async for client in _clients(create_app(settings)):
        caller = GraphQLClient(client)

        # then requests are served and still limited, in this process
        served = [await caller.post(FIVE_NAMES) for _ in range(2)]
        refused = await caller.post(FIVE_NAMES)

        assert [response.status_code for response in served] == [200, 200]
        # 20 - (7 + 2) - (7 + 1): admission charges included
        assert _cost(served[1])["throttleStatus"]["currentlyAvailable"] == 3
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "THROTTLED"


# --- the limiters themselves -----------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """Each implementation of the RateLimiter protocol; Redis when a test Redis is set."""
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    if not REDIS_URL:
        pytest.skip("SHOPGRAPH_TEST_REDIS_URL is not set")
    prefix = f"shopgraph-test:{uuid.uuid4().hex}:"
    redis = Redis.from_url(REDIS_URL)
    try:
        yield RedisRateLimiter(redis, key_prefix=prefix)
    finally:
        await redis.aclose()
        await _delete_keys(REDIS_URL, prefix)


async def test_a_bucket_takes_until_empty_then_refuses(limiter: RateLimiter) -> None:
    budget = {"capacity": 10, "restore_rate": TINY_RESTORE}

    first = await limiter.take("caller", 6, **budget)
    second = await limiter.take("caller", 6, **budget)

    assert first.allowed
    assert round(first.available) == 4
    assert not second.allowed
    assert round(second.available) == 4, "a refused take takes nothing"
    assert second.retry_after > 1000


async def test_giving_back_refills_up_to_the_capacity(limiter: RateLimiter) -> None:
    budget = {"capacity": 10, "restore_rate": TINY_RESTORE}
    await limiter.take("caller", 8, **budget)

    partly = await limiter.give_back("caller", 5, **budget)
    over = await limiter.give_back("caller", 50, **budget)
    charged = await limiter.give_back("caller", -4, **budget)

    assert round(partly.available) == 7
    assert round(over.available) == 10
    assert round(charged.available) == 6


async def test_a_bucket_restores_over_time(limiter: RateLimiter) -> None:
    budget = {"capacity": 10, "restore_rate": 100.0}
    await limiter.take("caller", 10, **budget)

    await asyncio.sleep(0.05)
    state = await limiter.take("caller", 0, **budget)

    assert 3 <= state.available <= 10


async def test_concurrent_takes_never_overspend(limiter: RateLimiter) -> None:
    budget = {"capacity": 100, "restore_rate": TINY_RESTORE}

    states = await asyncio.gather(*(limiter.take("caller", 10, **budget) for _ in range(25)))

    assert sum(state.allowed for state in states) == 10


async def test_the_failover_limiter_uses_memory_while_redis_is_down() -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{_free_port()}/0", socket_connect_timeout=1)
    fallback = MemoryRateLimiter()
    limiter = FailoverRateLimiter(
        RedisRateLimiter(redis, key_prefix="unused:"), fallback, pause_seconds=60
    )
    try:
        state = await limiter.take("caller", 3, capacity=10, restore_rate=TINY_RESTORE)
        again = await limiter.give_back("caller", 1, capacity=10, restore_rate=TINY_RESTORE)
    finally:
        await redis.aclose()

    assert state.allowed
    assert round(again.available) == 8
    assert round((await fallback.take("caller", 0, capacity=10, restore_rate=1)).available) == 8


# --- two server processes, one Redis -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _servers(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[str]]:
    """Start `count` uvicorn processes of the app; yield their base URLs; always stop them."""
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(count):
            port = _free_port()
            log = (log_dir / f"server-{index}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [*UVICORN, "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def _wait_until_healthy(client: httpx.AsyncClient, url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await client.get(f"{url}/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text, errors="replace")
    pytest.fail(f"{url} did not become healthy:\n{output}")


async def test_two_server_processes_share_one_budget_in_redis(
    backend: Backend, key_prefix: str, tmp_path: Path
) -> None:
    if not backend.redis_url:
        if REQUIRE_SERVICES and backend.name == "postgres":
            pytest.fail("SHOPGRAPH_TEST_REDIS_URL is required")
        pytest.skip("needs SHOPGRAPH_TEST_REDIS_URL (the PostgreSQL and Redis mode)")
    env = {
        **os.environ,
        "SHOPGRAPH_DATABASE_URL": backend.database_url,
        "SHOPGRAPH_REDIS_URL": backend.redis_url,
        "SHOPGRAPH_ENV": "development",
        "SHOPGRAPH_RATE_LIMIT_ENABLED": "true",
        "SHOPGRAPH_RATE_LIMIT_CAPACITY": "30",
        "SHOPGRAPH_RATE_LIMIT_RESTORE_RATE": str(TINY_RESTORE),
        "SHOPGRAPH_RATE_LIMIT_KEY_PREFIX": key_prefix,
        "SHOPGRAPH_LOG_LEVEL": "WARNING",
    }
    with _servers(2, env, tmp_path) as (first, second):
        async with httpx.AsyncClient(timeout=10) as client:
            for index, url in enumerate((first, second)):
                await _wait_until_healthy(client, url, tmp_path / f"server-{index}.log")

            async def post(url: str) -> httpx.Response:
                return await client.post(f"{url}/graphql", json={"query": FIVE_NAMES})

            # given 25 of 30 points spent on the first process: 3 x 7, admitted for 2 + 1 + 1
            spent = [await post(first) for _ in range(3)]
            assert [response.status_code for response in spent] == [200] * 3
            assert _cost(spent[-1])["throttleStatus"]["currentlyAvailable"] == 5

            # when the same caller asks the second process
            response = await post(second)

            # then the shared budget is exhausted there too (admitted for 2, new in that
            # process's cache: 3 left, 7 needed)
            assert response.status_code == 429, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
            assert _cost(response)["throttleStatus"]["currentlyAvailable"] == 3
