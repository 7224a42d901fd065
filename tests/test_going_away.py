"""uvicorn's shutdown closes the WebSockets still open with 1001: app/http/server_protocol.py.

Draining closes shopgraph's own sockets first (tests/test_subscriptions.py); this is what
a socket still open when the server itself stops gets (uvicorn's own protocol says 1012).
"""

from __future__ import annotations

from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.live_server import live_server

GOING_AWAY = "app.http.server_protocol:GoingAwayWebSocketProtocol"


async def holds_every_socket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that accepts each WebSocket and keeps it open until it is disconnected."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def test_a_socket_open_when_the_server_stops_is_closed_with_1001() -> None:
    # given a client whose WebSocket the server keeps open
    with live_server(holds_every_socket, ws=GOING_AWAY) as base:
        client = await websockets.connect(base.replace("http://", "ws://") + "/")
        await client.send("hello")
    # when the server has stopped (the block's end), then the client was told to go away
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "server shutting down")
