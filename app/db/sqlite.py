"""The embedded default's connections: SQLite through aiosqlite, one thread per connection."""

from __future__ import annotations

import asyncio
from typing import Any

import aiosqlite
from sqlalchemy import make_url

BUSY_TIMEOUT_SECONDS = 5  # how long a connection waits for a lock another one holds
CLOSE_TIMEOUT_SECONDS = 5.0


def sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Per connection: foreign keys are off by default in SQLite; WAL lets readers run
    beside a writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


class SQLiteConnector:
    """Opens the connections of the engines (their `async_creator`), so that none leaks.

    Each aiosqlite connection runs in a thread of its own, and neither opening nor a
    running statement stops when the request that awaits it is cancelled (its deadline
    passed). So opening is shielded, and a connection that opens after its requester left
    is closed at once; `close_all` closes what is still open (a statement still running in
    its thread finishes first) before the event loop goes away.
    """

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._args, self._kwargs = url.get_dialect()().create_connect_args(url)
        self._kwargs["timeout"] = BUSY_TIMEOUT_SECONDS
        # Strong references: a connection that SQLAlchemy dropped may still run a statement.
        self._open: set[aiosqlite.Connection] = set()
        self._closing: set[asyncio.Future[None]] = set()  # strong: the loop's are weak

    async def __call__(self) -> aiosqlite.Connection:
        """A new connection."""
        opening = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(self._close_unwanted)
            raise

    async def close_all(self) -> None:
        """Close every connection still open, waiting up to CLOSE_TIMEOUT_SECONDS."""
        # Closing one that SQLAlchemy already closed is a no-op; one it stopped (terminated)
        # closes once its thread has finished what it was running.
        opened, self._open = self._open, set()
        closing: list[asyncio.Future[None]] = [
            asyncio.ensure_future(connection.close()) for connection in opened
        ]
        closing += self._closing
        if not closing:
            return
        _, pending = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT_SECONDS)
        for waiting in pending:
            waiting.cancel()

    async def _connect(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(*self._args, **self._kwargs)
        self._open.add(connection)
        return connection

    def _close_unwanted(self, opening: asyncio.Future[aiosqlite.Connection]) -> None:
        if opening.cancelled() or opening.exception() is not None:
            return
        closing = asyncio.ensure_future(opening.result().close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
