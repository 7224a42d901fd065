"""A stub upstream for nginx's streaming paths: a WebSocket echo and a slow event stream.

It stands in for shopgraph's subscription transports (built separately) so that the
proxy's own handling is tested: the WebSocket upgrade on /graphql, and an event stream
whose events must reach the client as they are sent (no buffering in nginx). It sends no
`X-Accel-Buffering` header: the config alone must turn buffering off.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.live_server import STARTUP_SECONDS, free_port

EVENTS = 3
EVENT_GAP_SECONDS = 0.4


async def stub_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """WebSocket: accept the first offered subprotocol, echo texts. HTTP: a slow SSE stream."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        offered = scope.get("subprotocols") or [None]
        await send({"type": "websocket.accept", "subprotocol": offered[0]})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": f"echo {message.get('text')}"})
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    for number in range(EVENTS):
        if number:
            await asyncio.sleep(EVENT_GAP_SECONDS)
        event = f'event: next\ndata: {{"n": {number}}}\n\n'.encode()
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"event: complete\ndata:\n\n"})


@contextmanager
def stream_stub() -> Iterator[int]:
    """Serve the stub on a free loopback port until the block ends; yield the port."""
    port = free_port()
    config = uvicorn.Config(
        stub_app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"stub-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the stream stub did not start on port {port}")
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
