"""With Redis unreachable the caches step aside: answers come from the database, no request
fails, /readyz says degraded, and the cache is used again once Redis is back.

The test starts a redis-server of its own on a free port (the shared one is never stopped),
serves `shopgraph serve` against it, and kills and restarts it under bounded loopback load.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.caching_docs import LISTING, LISTING_WITH_VIEWER, UPDATE_PRODUCT
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import private_shop
from tests.redis_server import RedisServer
from tests.server_processes import server_process

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
REQUESTS_PER_CLIENT = 300  # the load is bounded in count, and stops early once the test is done
CLIENTS = 3


async def _ready_status(http: httpx.AsyncClient) -> tuple[int, str]:
    response = await http.get("/readyz")
    return response.status_code, response.json()["status"]


async def _wait_for_status(http: httpx.AsyncClient, wanted: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (await _ready_status(http))[1] == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz never said {wanted!r}: {await _ready_status(http)}")


async def test_killing_redis_under_load_fails_no_request_and_the_cache_comes_back(
    backend: Backend, tmp_path: Path, redis_server: RedisServer
) -> None:
    url = redis_server.url
    overrides: dict[str, Any] = {
        "cache_enabled": True,
        "redis_url": url,
        "redis_failover_pause_seconds": 0.2,
    }
    async with private_shop(backend, tmp_path, "redisdown", **overrides) as shop:
        with server_process(shop.settings) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                anonymous = GraphQLClient(http)
                staff = GraphQLClient(http, shop.staff.headers)
                first = (await anonymous.query(LISTING))["products"]["edges"][0]["node"]
                assert await _ready_status(http) == (200, "ready")

                failures: list[str] = []
                answered = 0
                stop = asyncio.Event()

                async def load() -> None:
                    nonlocal answered
                    for index in range(REQUESTS_PER_CLIENT):
                        if stop.is_set():
                            return
                        query = LISTING if index % 2 else LISTING_WITH_VIEWER
                        try:
                            response = await anonymous.post(query)
                            body = response.json()
                        except (httpx.HTTPError, ValueError) as error:
                            failures.append(repr(error))
                            continue
                        answered += 1
                        if response.status_code != 200 or "errors" in body:
                            failures.append(f"{response.status_code}: {body}")

                # given clients reading through both caches
                clients = [asyncio.create_task(load()) for _ in range(CLIENTS)]
                await asyncio.sleep(0.5)

                # when Redis dies
                redis_server.kill()
                await asyncio.sleep(1)
                # then the process is degraded, not out of rotation, and still writes
                degraded = await _ready_status(http)
                renamed = await staff.query(
                    UPDATE_PRODUCT, {"id": first["id"], "input": {"name": "AAAA outage"}}
                )
                assert renamed["updateProduct"]["userErrors"] == []
                during = answered

                # when Redis comes back on the same port
                redis_server.start()
                await _wait_for_status(http, "ready")
                await asyncio.sleep(0.5)
                stop.set()
                await asyncio.gather(*clients)

                # then no request failed, before, during or after the outage
                assert failures == []
                assert during > 0 and answered > during
                assert degraded == (200, "degraded")
                # and the cache is used again, showing the write made while it was away
                bodies = [(await anonymous.post(LISTING)).json() for _ in range(2)]
                names = [edge["node"]["name"] for edge in bodies[1]["data"]["products"]["edges"]]
                assert "AAAA outage" in names
                assert bodies[1]["extensions"]["debug"]["cache"]["response"] == "hit"
