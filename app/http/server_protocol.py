"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, with limits on the request head.

uvicorn bounds idle keep-alive connections and concurrency, and the app bounds the body
(408), but nothing bounds the head: a connection that sends nothing, or trickles its
headers a byte at a time, is held for ever (45,000 of them exhausted a worker's file
descriptors), and under httptools an unfinished head is buffered without limit
(uvicorn's `h11_max_incomplete_event_size` is h11's only). This protocol gives every
request head a deadline and a size limit.

It also writes each connection's output once per turn of the event loop
(`CoalescingTransport`): uvicorn writes a response's head and its body separately, and on
loopback every write is a system call that delivers to the client, as costly as the rest of
a cached response's work.

At shutdown, open WebSockets are closed with 1001 (going away: clients reconnect to
another server), where uvicorn says 1012 (service restart) (`GoingAwayWebSocketProtocol`).

It subclasses uvicorn's non-public `HttpToolsProtocol` and `WebSocketsSansIOProtocol` and reads its per-connection state:
every uvicorn-internal name shopgraph uses is in this module, checked against the range
`pyproject.toml` pins (`check_installed`, when the protocol is built for a server).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, cast

import orjson
import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from app.engine import ErrorCode
from app.engine.compat import check_installed
from app.settings import Settings

# The distribution whose internals this module relies on.
SERVER_DISTRIBUTIONS = ("uvicorn",)

logger = structlog.get_logger("shopgraph.http")


class HeadLimitedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request head is late (408) or too big (431).

    The deadline runs from the connection's start, or from the first byte after the
    previous request (a keep-alive connection between requests is uvicorn's keep-alive
    timeout's). Both limits are class attributes: `server_protocol` makes a subclass per
    server, because uvicorn builds protocols from a class (or an import string).
    """

    header_timeout: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 65_536

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._reading_head = True  # from the connection's start or the end of a request
        self._head_begun = False  # a byte of a request line arrived (not only blank lines)
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(cast("asyncio.Transport", coalescing))
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered and closing: nothing more is parsed
        while data:
            if self._reading_head:
                # Feed at most what the head may still take, so a head that never ends is
                # refused at the limit, not buffered. (Bytes after a complete request in the
                # same read start the next head uncounted: at most one read more.)
                self._arm_head_timer()
                room = self.max_header_bytes - self._head_bytes
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data, b""
            super().data_received(piece)
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # refused by uvicorn (400) or upgraded to a WebSocket
            if self._reading_head and self._head_bytes >= self.max_header_bytes:
                self._refuse(
                    431,
                    f"The request head is over {self.max_header_bytes} bytes",
                    ErrorCode.PAYLOAD_TOO_LARGE,
                )
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_begun = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_begun:  # nothing to answer: a connection that sent no request
            self._refuse(None, "", ErrorCode.TIMEOUT)
            return
        self._refuse(
            408,
            f"The request head did not arrive within {self.header_timeout:g} s",
            ErrorCode.TIMEOUT,
        )

    def _refuse(self, status: int | None, message: str, code: ErrorCode) -> None:
        """Answer `status` (None: nothing) and close; a request in flight is answered first."""
        self._refused = True
        self._cancel_head_timer()
        logger.debug("request head refused", status=status, client=self.client)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # An earlier (pipelined) request is being answered: close after its response,
            # as uvicorn's graceful shutdown does, and write nothing in between.
            cycle.keep_alive = False
            return
        if status is not None:
            self.transport.write(
                _response(status, message, code, self.server_state.default_headers)
            )
        self.transport.close()


class CoalescingTransport:
    """A transport whose writes of one event-loop turn leave in one system call.

    A write is held until the loop's next turn (`call_soon`), so a response's head and body,
    written back to back, are sent together; nothing waits longer than that turn. Closing
    sends what is held first; everything else is the wrapped transport's.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold `data` for this turn's single write."""
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        """Hold each of `lines`."""
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if not held or self._transport.is_closing():
            return  # the connection is gone: nothing to send it to
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def unwrapped(self) -> asyncio.Transport:
        """The wrapped transport, with what is held sent (the connection became a WebSocket)."""
        self._flush()
        return self._transport

    def get_write_buffer_size(self) -> int:
        """The wrapped transport's buffer plus what is held."""
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def write_eof(self) -> None:
        """Send what is held, then the end of the stream."""
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        """Send what is held, then close."""
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._held = []
        self._transport.abort()

    # What uvicorn calls on every request, defined here: `__getattr__` is the slow way.
    def is_closing(self) -> bool:
        """The wrapped transport's."""
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        """The wrapped transport's."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """The wrapped transport's."""
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _response(
    status: int, message: str, code: ErrorCode, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """A whole HTTP/1.1 response with a GraphQL-shaped error body and `Connection: close`."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code.value}}]})
    head = [STATUS_LINE[status]]
    for name, value in headers:
        head += [name, b": ", value, b"\r\n"]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


def server_protocol(settings: Settings) -> type[HeadLimitedProtocol]:
    """The protocol class a server with these settings runs (uvicorn.Config's `http`)."""
    check_installed(SERVER_DISTRIBUTIONS)
    configured = type(
        "HeadLimitedProtocol",
        (HeadLimitedProtocol,),
        {
            "header_timeout": settings.header_timeout_seconds,
            "max_header_bytes": settings.max_header_bytes,
        },
    )
    return cast("type[HeadLimitedProtocol]", configured)


class GoingAwayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (websockets, sans-I/O), closing with 1001 at shutdown."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """As uvicorn's, on the bare transport: a WebSocket writes each frame once, so
        holding it for the loop's next turn (CoalescingTransport) would only add a callback."""
        if isinstance(transport, CoalescingTransport):
            transport = transport.unwrapped()
        super().connection_made(transport)

    def shutdown(self) -> None:
        """As uvicorn's, with code 1001 ("going away") instead of 1012."""
        if not self.handshake_complete or self.close_sent:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1001})
        self.conn.send_close(1001, "server shutting down")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()
