"""Counting SQL statements on the wire: a loopback proxy in front of PostgreSQL.

Every server under test (shopgraph, PostGraphile, the asyncpg floor) is pointed at
this proxy for a few requests; it forwards bytes unchanged and records each statement
that a client *executes* (a simple-protocol Query, or an extended-protocol Execute,
whose text it knows from the Parse and Bind before it). That is what PostgreSQL sees,
whatever the client thinks it sent, and needs neither pg_stat_statements nor logs.
It refuses TLS (answers "N" to SSLRequest) so that it can read the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import threading
from dataclasses import dataclass

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
_CONTROL = re.compile(
    r"^\s*(begin|commit|rollback|start transaction|savepoint|release|set\b|reset\b|"
    r"select\s+set_config|select\s+pg_advisory_unlock_all|close all|unlisten|discard)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class StatementCount:
    """The statements executed during one measured request."""

    statements: list[str]

    @property
    def total(self) -> int:
        """All statements, transaction control included."""
        return len(self.statements)

    @property
    def control(self) -> int:
        """BEGIN, COMMIT, SET, set_config and connection resets."""
        return sum(1 for text in self.statements if _CONTROL.match(text))

    @property
    def data(self) -> int:
        """Statements that read or write data."""
        return self.total - self.control

    def summary(self) -> str:
        """'5' or '1 (+3 control)' for the results table."""
        return f"{self.data}" if not self.control else f"{self.data} (+{self.control} control)"


class CountingProxy:
    """A TCP proxy on 127.0.0.1 that logs executed statements; runs its own event loop thread."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """Proxy to upstream_host:upstream_port (not started yet)."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self._log: list[str] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sqlcount", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> int:
        """Listen on a free loopback port; returns the port."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=10)
        return self.port

    def stop(self) -> None:
        """Close the listener and every open connection, then the loop."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def reset(self) -> None:
        """Forget the statements seen so far."""
        with self._lock:
            self._log.clear()

    def taken(self) -> StatementCount:
        """The statements seen since the last reset."""
        with self._lock:
            return StatementCount(list(self._log))

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        if hasattr(self._server, "close_clients"):
            self._server.close_clients()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def _record(self, text: str) -> None:
        with self._lock:
            self._log.append(" ".join(text.split()))

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_writer.close()
            return
        to_client = asyncio.create_task(_pipe(upstream_reader, client_writer))
        try:
            await self._from_client(client_reader, client_writer, upstream_writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            upstream_writer.close()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(to_client, 5)
            client_writer.close()

    async def _from_client(
        self,
        reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        while True:  # start-up: no type byte; refuse TLS and GSS encryption
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client_writer.write(b"N")
                await client_writer.drain()
                continue
            upstream.write(head + rest)
            await upstream.drain()
            break
        prepared: dict[bytes, str] = {}
        portals: dict[bytes, str] = {}
        while True:
            head = await reader.readexactly(5)
            kind = head[:1]
            (length,) = struct.unpack("!i", head[1:])
            body = await reader.readexactly(length - 4)
            if kind == b"Q":
                self._record(body.rstrip(b"\0").decode("utf-8", "replace"))
            elif kind == b"P":
                name, query = body.split(b"\0", 2)[:2]
                prepared[name] = query.decode("utf-8", "replace")
            elif kind == b"B":
                portal, statement = body.split(b"\0", 2)[:2]
                portals[portal] = prepared.get(statement, "<unknown prepared statement>")
            elif kind == b"E":
                portal = body.split(b"\0", 1)[0]
                self._record(portals.get(portal, "<unknown portal>"))
            upstream.write(head + body)
            await upstream.drain()
            if kind == b"X":
                return


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until end of stream."""
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
