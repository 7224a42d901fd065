"""Subscription clients for tests: gql over both WebSocket subprotocols, httpx-sse for SSE,
and a raw `websockets` connection for the protocol's close codes."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from httpx_sse import aconnect_sse

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = (TRANSPORT_WS, LEGACY_WS)


def ws_url(base: str) -> str:
    """The WebSocket URL of a server's /graphql."""
    return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/graphql"


class Subscription:
    """One running subscription: its results arrive on `results` as they come."""

    def __init__(self) -> None:
        self.results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        """The next result (an exception the client raised is raised here)."""
        getter = asyncio.ensure_future(self.results.get())
        assert self.task is not None
        done, _ = await asyncio.wait(
            {getter, self.task}, timeout=within, return_when="FIRST_COMPLETED"
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task in done:
            self.task.result()  # raises what the client raised
            raise AssertionError("the subscription ended")
        raise TimeoutError(f"no result within {within} s")


@asynccontextmanager
async def gql_session(
    base: str, protocol: str, authorization: str | None, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Any]:
    """A gql client session over one WebSocket with the given subprotocol and token."""
    payload = {"Authorization": authorization} if authorization else {}
    transport = WebsocketsTransport(
        url=ws_url(base),
        subprotocols=[protocol],
        init_payload=payload,
        connect_timeout=5,
        ssl=tls or False,
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        yield session


def start(session: Any, query: str, variables: dict[str, Any] | None = None) -> Subscription:
    """Start a subscription on a gql session; its results fill `Subscription.results`."""
    subscription = Subscription()

    async def run() -> None:
        async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
            await subscription.results.put(result)

    subscription.task = asyncio.create_task(run())
    return subscription


async def sse_events(
    base: str,
    query: str,
    variables: dict[str, Any] | None,
    authorization: str | None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) pairs of a graphql-sse request (distinct connections mode)."""
    headers = {"Accept": "text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30.0), verify=tls or True) as http,
        aconnect_sse(
            http,
            "POST",
            f"{base}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
        ) as source,
    ):
        source.response.raise_for_status()
        async for event in source.aiter_sse():
            yield event.event, json.loads(event.data) if event.data else None


@asynccontextmanager
async def raw_socket(
    base: str, protocol: str = TRANSPORT_WS, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Any]:
    """A bare WebSocket connection (for close codes and protocol errors)."""
    async with websockets.connect(ws_url(base), subprotocols=[protocol], ssl=tls) as socket:  # type: ignore[list-item]
        yield socket


async def send(socket: Any, message: dict[str, Any]) -> None:
    """Send one JSON message."""
    await socket.send(json.dumps(message))


async def receive(
    socket: Any, *, skip: tuple[str, ...] = ("ping", "ka"), within: float = 5.0
) -> dict[str, Any]:
    """The next JSON message that is not a keep-alive."""
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), within))
        if message.get("type") not in skip:
            return message  # type: ignore[no-any-return]


async def close_code(socket: Any, within: float = 5.0) -> int | None:
    """The code the server closed the socket with (waiting for it)."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), within)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
