"""Subscriptions through nginx (deploy/nginx.conf) over TLS, in front of two server processes.

PostgreSQL and Redis only: two processes share them. Subscribers and writers both go
through nginx, which balances them over the two processes, so events cross processes.
SIGTERM to one process closes its sockets with 1001; clients that reconnect through
nginx land on the other and hear the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.platform.global_ids import to_global_id
from tests.conftest import Backend, GraphQLClient
from tests.fleet import SAMPLE_CERT, Nginx, ServerProcess, nginx_proxy, server_processes
from tests.private_shop import Shop, private_shop
from tests.subscription_clients import (
    LEGACY_WS,
    PROTOCOLS,
    close_code,
    gql_session,
    receive,
    send,
    sse_events,
    start,
)

WATCH = "subscription ($id: ID!) { productUpdated(productId: $id) { id name } }"
RENAME = """mutation ($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { userErrors { message } }
}"""


@dataclass
class Proxied:
    """The shop, its two processes and the nginx in front of them."""

    shop: Shop
    servers: list[ServerProcess]
    nginx: Nginx
    tls: ssl.SSLContext
    product: str


@pytest.fixture(scope="module")
def tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(SAMPLE_CERT))


@pytest.fixture(scope="module")
async def proxied(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, tls: ssl.SSLContext
) -> AsyncIterator[Proxied]:
    if backend.redis_url is None:
        pytest.skip("one process in the embedded mode: two need the shared PostgreSQL and Redis")
    tmp = tmp_path_factory.mktemp("subscriptions-nginx")
    async with private_shop(backend, tmp, "subsnginx") as shop:
        product = to_global_id(
            "Product", await shop.value("SELECT min(id) FROM products WHERE is_published")
        )
        with _fleet(shop, tmp / "nginx") as (servers, nginx):
            yield Proxied(shop, servers, nginx, tls, product)


@contextlib.contextmanager
def _fleet(shop: Shop, prefix: Path) -> Iterator[tuple[list[ServerProcess], Nginx]]:
    with (
        server_processes(shop.settings, 2) as servers,
        nginx_proxy([s.port for s in servers], prefix) as nginx,
    ):
        yield servers, nginx


async def _rename(proxied: Proxied) -> None:
    async with httpx.AsyncClient(
        base_url=proxied.nginx.https, verify=proxied.tls, timeout=10
    ) as http:
        staff = GraphQLClient(http, dict(proxied.shop.staff.headers))
        data = await staff.query(
            RENAME, {"id": proxied.product, "name": f"Via nginx {uuid.uuid4().hex[:6]}"}
        )
        assert data["updateProduct"]["userErrors"] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_websocket_subscriptions_work_through_nginx_over_tls(
    proxied: Proxied, protocol: str
) -> None:
    async with gql_session(proxied.nginx.https, protocol, None, proxied.tls) as session:
        events = start(session, WATCH, {"id": proxied.product})
        for _ in range(20):  # until the subscription has started on its process
            await _rename(proxied)
            with contextlib.suppress(TimeoutError):
                event = await events.next(within=0.5)
                break
        else:
            pytest.fail("no event came through nginx")

    assert event["productUpdated"]["id"] == proxied.product


async def test_sse_subscriptions_work_through_nginx_over_tls(proxied: Proxied) -> None:
    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def read() -> None:
        async for event in sse_events(
            proxied.nginx.https, WATCH, {"id": proxied.product}, None, proxied.tls
        ):
            await received.put(event)

    reader = asyncio.create_task(read())
    try:
        for _ in range(20):
            await _rename(proxied)
            with contextlib.suppress(TimeoutError):
                name, data = await asyncio.wait_for(received.get(), 0.5)
                break
        else:
            pytest.fail("no event came through nginx")
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader

    assert name == "next" and data["data"]["productUpdated"]["id"] == proxied.product


async def _subscriber(proxied: Proxied) -> Any:
    socket = await websockets.connect(
        proxied.nginx.https.replace("https://", "wss://") + "/graphql",
        subprotocols=[LEGACY_WS],  # type: ignore[list-item]
        ssl=proxied.tls,
    )
    await send(socket, {"type": "connection_init"})
    assert (await receive(socket))["type"] == "connection_ack"
    await send(
        socket,
        {
            "type": "start",
            "id": "1",
            "payload": {"query": WATCH, "variables": {"id": proxied.product}},
        },
    )
    return socket


async def _hears_a_change(proxied: Proxied, sockets: list[Any]) -> None:
    """Every socket hears a rename (renaming again until each has)."""
    waiting = set(range(len(sockets)))
    for _ in range(20):
        await _rename(proxied)
        for index in list(waiting):
            with contextlib.suppress(TimeoutError):
                message = await receive(sockets[index], within=0.3)
                assert message["type"] == "data", message
                waiting.discard(index)
        if not waiting:
            return
    pytest.fail(f"{len(waiting)} of {len(sockets)} subscribers heard nothing")


async def test_sigterm_closes_one_processs_sockets_and_reconnects_land_on_the_other(
    backend: Backend, tmp_path: Path, tls: ssl.SSLContext
) -> None:
    if backend.redis_url is None:
        pytest.skip("one process in the embedded mode: two need the shared PostgreSQL and Redis")
    async with private_shop(backend, tmp_path, "subsnginxterm") as shop:
        product = to_global_id(
            "Product", await shop.value("SELECT min(id) FROM products WHERE is_published")
        )
        with _fleet(shop, tmp_path / "nginx") as (servers, nginx):
            proxied = Proxied(shop, servers, nginx, tls, product)
            # given subscribers spread over both processes by nginx
            sockets = [await _subscriber(proxied) for _ in range(6)]
            await _hears_a_change(proxied, sockets)

            # when one process is told to stop
            servers[0].terminate()
            codes = await asyncio.gather(
                *(close_code(s, within=3.0) for s in sockets), return_exceptions=True
            )
            closed = [index for index, code in enumerate(codes) if code == 1001]
            # then its subscribers are closed with 1001 (going away), the others stay
            assert 0 < len(closed) < len(sockets), codes
            assert all(code == 1001 or isinstance(code, TimeoutError) for code in codes), codes

            # and when they reconnect through nginx, they resume on the other process
            for index in closed:
                sockets[index] = await _subscriber(proxied)
            servers[0].wait()
            await _hears_a_change(proxied, sockets)
            for socket in sockets:
                await socket.close()
