"""GraphQL over WebSocket: both subprotocols, on the streaming pipeline.

A connection must send `connection_init` (with the access token, if any) within
`init_timeout_seconds`; its token is checked then (a bad one closes the socket with
4403) and the socket is closed with 4403 when the token expires. Each operation is
taken through the admission pipeline (app/http/subscriptions.py) as an HTTP request is,
authenticated with the connection's token. A connection holds at most
`max_operations` operations; a viewer (user, partner, or the IP of anonymous callers)
holds at most `max_connections_per_viewer` connections to this process. While idle the
server sends the protocol's keep-alive. `close_all` (at shutdown) closes every socket
with 1001 so that clients reconnect to another server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.http.errors import RequestError, internal_error_body, log_unexpected
from app.http.params import params_from
from app.http.pipeline import GraphQLParams
from app.http.subscriptions import StreamFailed, StreamingOperations
from app.http.ws_dialects import DIALECTS, CloseCode, Dialect, authorization_of

logger = structlog.get_logger("shopgraph.websocket")

# What the connection's token names: who it is (a key to count connections by) and
# until when it is good (epoch seconds, None: no expiry). Raises Unauthenticated.
Identify = Callable[[str | None, str], Awaitable[tuple[str, float | None]]]


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """The bounds of one WebSocket connection (from settings)."""

    init_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 15.0
    max_operations: int = 20
    max_connections_per_viewer: int = 10
    max_message_bytes: int = 100_000


class WebSocketEndpoint:
    """The /graphql WebSocket route: picks the subprotocol, runs one session per socket."""

    def __init__(
        self, operations: StreamingOperations, identify: Identify, limits: SocketLimits
    ) -> None:
        self.operations = operations
        self.identify = identify
        self.limits = limits
        self.sessions: set[Session] = set()
        self.connections_of: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket connection to its end."""
        websocket = WebSocket(scope, receive, send)
        dialect = next(
            (DIALECTS[name] for name in scope.get("subprotocols", ()) if name in DIALECTS), None
        )
        if dialect is None:  # refused in the handshake (an HTTP 403)
            await websocket.close(CloseCode.SUBPROTOCOL_NOT_ACCEPTABLE)
            return
        await websocket.accept(subprotocol=dialect.name)
        session = Session(self, websocket, dialect, send)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    async def close_all(self, code: int = CloseCode.GOING_AWAY) -> None:
        """Close every open socket (the server is going away)."""
        await asyncio.gather(
            *(session.close(code, "server shutting down") for session in tuple(self.sessions))
        )


class Session:
    """One WebSocket connection: its token, its operations, its timers."""

    def __init__(
        self, endpoint: WebSocketEndpoint, websocket: WebSocket, dialect: Dialect, send: Send
    ) -> None:
        self.endpoint = endpoint
        self.websocket = websocket
        # Messages go to the server's ASGI `send` itself: Starlette's WebSocket would only
        # check again, on every message of every subscriber, what `closed` tells.
        self._asgi_send = send
        self.dialect = dialect
        self.limits = endpoint.limits
        self.authorization: str | None = None
        self.viewer_key: str | None = None
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self.timers: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Read messages until the socket closes; then stop every operation."""
        self.timers.append(asyncio.create_task(self._init_deadline()))
        try:
            while not self.closed.is_set():
                try:
                    text = await self.websocket.receive_text()
                except (WebSocketDisconnect, RuntimeError, KeyError):
                    break  # closed by the client (or a binary frame: not ours)
                await self._on_message(text)
        finally:
            self.closed.set()
            for task in (*self.operations.values(), *self.timers):
                task.cancel()
            await asyncio.gather(*self.operations.values(), *self.timers, return_exceptions=True)
            if self.viewer_key is not None:
                self.endpoint.connections_of[self.viewer_key] -= 1
                if self.endpoint.connections_of[self.viewer_key] <= 0:
                    del self.endpoint.connections_of[self.viewer_key]

    async def close(self, code: int, reason: str = "") -> None:
        """Close the socket (once)."""
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(RuntimeError, OSError):
            if self.websocket.application_state is WebSocketState.CONNECTED:
                await self.websocket.close(code, reason)

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message (one at a time: operations send concurrently)."""
        await self.send_text(orjson.dumps(message).decode())

    async def send_text(self, text: str) -> None:
        """Send one message already encoded."""
        if self.closed.is_set():
            return
        async with self.send_lock:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self._asgi_send({"type": "websocket.send", "text": text})

    async def _on_message(self, text: str) -> None:
        if len(text) > self.limits.max_message_bytes:
            await self.close(CloseCode.MESSAGE_TOO_BIG, "message too big")
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.close(CloseCode.BAD_MESSAGE, "invalid JSON")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "connection_init":
            await self._on_init(message.get("payload"))
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == self.dialect.subscribe:
            await self._on_subscribe(message)
        elif kind == self.dialect.stop:
            await self._on_stop(message.get("id"))
        elif kind == "connection_terminate":
            await self.close(1000)
        else:
            await self.close(CloseCode.BAD_MESSAGE, f"unknown message type {kind!r}")

    async def _on_init(self, payload: Any) -> None:
        if self.acknowledged:
            await self.close(CloseCode.TOO_MANY_INITS, "too many initialisation requests")
            return
        authorization = authorization_of(payload)
        if authorization is None:
            authorization = self.websocket.headers.get("authorization")
        client = self.websocket.client
        try:
            key, expires_at = await self.endpoint.identify(
                authorization, client.host if client else "-"
            )
        except Exception as error:  # Unauthenticated, or the lookup failed
            message = getattr(error, "message", None) or "The access token was refused"
            refusal = self.dialect.init_refused(message)
            if refusal is not None:
                await self.send(refusal)
            await self.close(CloseCode.FORBIDDEN, f"Forbidden: {message}"[:120])
            return
        counts = self.endpoint.connections_of
        if counts[key] >= self.limits.max_connections_per_viewer:
            await self.close(CloseCode.POLICY_VIOLATION, "too many connections for this viewer")
            return
        counts[key] += 1
        self.viewer_key = key
        self.authorization = authorization
        self.acknowledged = True
        await self.send({"type": "connection_ack"})
        self.timers.append(asyncio.create_task(self._keep_alive()))
        if expires_at is not None:
            self.timers.append(asyncio.create_task(self._expire_at(expires_at)))

    async def _on_subscribe(self, message: dict[str, Any]) -> None:
        operation_id = message.get("id")
        payload = message.get("payload")
        if not isinstance(operation_id, str) or not operation_id or not isinstance(payload, dict):
            await self.close(CloseCode.BAD_MESSAGE, "an operation needs an id and a payload")
            return
        if not self.acknowledged:
            await self.close(CloseCode.UNAUTHORIZED, "Unauthorized")
            return
        if operation_id in self.operations:
            if self.dialect.duplicate_id_closes:
                await self.close(
                    CloseCode.DUPLICATE_ID, f"Subscriber for {operation_id} already exists"
                )
                return
            await self._on_stop(operation_id)
        if len(self.operations) >= self.limits.max_operations:
            await self.send(
                self.dialect.error(
                    operation_id,
                    [
                        {
                            "message": f"A connection may run at most {self.limits.max_operations} "
                            "operations at once; stop one first",
                            "extensions": {"code": "BAD_REQUEST"},
                        }
                    ],
                )
            )
            return
        params = _params_of(payload)
        if isinstance(params, str):
            await self.send(
                self.dialect.error(
                    operation_id, [{"message": params, "extensions": {"code": "BAD_REQUEST"}}]
                )
            )
            return
        task = asyncio.create_task(self._operate(operation_id, params))
        self.operations[operation_id] = task

    async def _on_stop(self, operation_id: Any) -> None:
        task = self.operations.pop(operation_id, None) if isinstance(operation_id, str) else None
        if task is None:
            return
        task.cancel()
        if self.dialect.complete_after_stop:
            await self.send({"type": "complete", "id": operation_id})

    async def _operate(self, operation_id: str, params: GraphQLParams) -> None:
        request_id = uuid.uuid4().hex
        try:
            started = await self.endpoint.operations.start(self._connection(), params, request_id)
            if started.stream is None:
                await self._single(operation_id, started.result or {}, started.status)
                return
            # The payload comes encoded (once for every subscriber sharing it).
            head = (
                b'{"type":"' + self.dialect.next.encode() + b'","id":' + orjson.dumps(operation_id)
            )
            try:
                async for payload in started.stream:
                    await self.send_text((head + b',"payload":' + payload + b"}").decode())
            finally:
                await started.close()
            await self.send({"type": "complete", "id": operation_id})
        except StreamFailed as failed:
            await self.send(self.dialect.error(operation_id, failed.errors))
        except Exception as error:  # a bug: masked for the client, logged in full
            log_unexpected(error, request_id=request_id, where="websocket operation")
            body = internal_error_body(request_id)
            await self.send(self.dialect.error(operation_id, body["errors"]))
        finally:
            if self.operations.get(operation_id) is asyncio.current_task():
                del self.operations[operation_id]

    async def _single(self, operation_id: str, result: Any, status: int | None) -> None:
        if status == 401:  # the connection's token no longer authenticates
            await self.close(CloseCode.FORBIDDEN, "Forbidden: the access token was refused")
            return
        if status is not None or "data" not in result:  # refused, or never executed
            await self.send(self.dialect.error(operation_id, list(result.get("errors") or [])))
            return
        await self.send({"type": self.dialect.next, "id": operation_id, "payload": result})
        await self.send({"type": "complete", "id": operation_id})

    def _connection(self) -> HTTPConnection:
        """The socket as the pipeline sees it: its scope, with the connection's token."""
        scope = dict(self.websocket.scope)
        headers = [(name, value) for name, value in scope["headers"] if name != b"authorization"]
        if self.authorization is not None:
            headers.append((b"authorization", self.authorization.encode("latin-1", "replace")))
        scope["headers"] = headers
        return HTTPConnection(scope)

    async def _init_deadline(self) -> None:
        await asyncio.sleep(self.limits.init_timeout_seconds)
        if not self.acknowledged:
            await self.close(CloseCode.INIT_TIMEOUT, "Connection initialisation timeout")

    async def _keep_alive(self) -> None:
        while not self.closed.is_set():
            await self.send(self.dialect.keep_alive)
            await asyncio.sleep(self.limits.keep_alive_seconds)

    async def _expire_at(self, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self.close(CloseCode.FORBIDDEN, "Forbidden: the access token has expired")


def _params_of(payload: dict[str, Any]) -> GraphQLParams | str:
    """An operation's parameters from a subscribe/start payload, or what is wrong with it."""
    try:
        return params_from(payload)
    except RequestError as error:
        return error.message


__all__ = ["Identify", "Session", "SocketLimits", "WebSocketEndpoint"]
