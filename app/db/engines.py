"""Database engines and the session factory.

Two engines share one URL: `engine` for units of work (services open their own
transaction), and `read_engine` in AUTOCOMMIT mode for loader batches, so a plain
read is one round trip instead of BEGIN / SELECT / ROLLBACK. On PostgreSQL, loader
batches go through `fast_reads`, which runs on the read engine's pooled connections.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db.fast_reads import FastReader
from app.db.sqlite import SQLiteConnector, sqlite_pragmas
from app.db.statements import note_statement, on_statement
from app.db.work import AfterCommit, JobsCommitted, UnitOfWork, note_write, unit_of_work
from app.engine.compat import check_installed
from app.settings import Settings


def _make_engine(
    settings: Settings, *, autocommit: bool, sqlite: SQLiteConnector | None
) -> AsyncEngine:
    options: dict[str, Any] = {}
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
    if settings.is_sqlite:
        options["async_creator"] = sqlite
    else:
        # A fixed pool: overflow connections are closed on return, so under load they
        # churn (a new PostgreSQL backend per checkout). Waiting for a pooled one is cheaper.
        options["pool_size"] = settings.db_pool_size
        options["max_overflow"] = 0
        options["pool_timeout"] = settings.db_pool_timeout_seconds
        # A stalled server or path ends in an error, not a hang: the connect and every
        # statement are bounded (bulk work such as seeding lifts the statement bound).
        statement_ms = round(settings.db_statement_timeout_seconds * 1000)
        server_settings = {"statement_timeout": str(statement_ms)}
        if autocommit:
            # Reads are key lookups (`id = ANY($1)`) and keyset pages whose best plan does
            # not depend on the values: one generic plan per prepared statement instead of
            # PostgreSQL planning every execution again (LIMIT $1 keeps it on custom plans).
            server_settings["plan_cache_mode"] = "force_generic_plan"
        options["connect_args"] = {
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": server_settings,
        }
    engine = create_async_engine(settings.database_url, **options)
    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    if not autocommit:
        event.listen(engine.sync_engine, "before_cursor_execute", note_write)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


@dataclass
class Database:
    """The engines and session factory built once per process, in the lifespan."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Loader reads on raw asyncpg (PostgreSQL only; SQLite reads through read()).
    fast_reads: FastReader | None = None
    sqlite: SQLiteConnector | None = None  # opens (and at the end closes) SQLite connections
    # What committed changes go to (cache invalidation, change bus): set by app/main.py.
    after_commit: AfterCommit | None = None
    # Told when a unit of work committed jobs (the outbox relay's kick): set by app/main.py.
    jobs_committed: JobsCommitted | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """Build engines for the configured URL (no connection is opened yet)."""
        if not settings.is_sqlite:
            # Fast reads rely on SQLAlchemy internals checked on the pinned range only.
            check_installed(["sqlalchemy"])
        sqlite = SQLiteConnector(settings.database_url) if settings.is_sqlite else None
        engine = _make_engine(settings, autocommit=False, sqlite=sqlite)
        read_engine = _make_engine(settings, autocommit=True, sqlite=sqlite)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        fast_reads = (
            None if settings.is_sqlite else FastReader(read_engine, on_statement=note_statement)
        )
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessions=sessions,
            fast_reads=fast_reads,
            sqlite=sqlite,
        )

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A service's transaction; the changes it records go out after it commits (db/work.py)."""
        return unit_of_work(self.engine, self.after_commit, self.jobs_committed)

    def read(self) -> _ReadConnection:
        """A short AUTOCOMMIT connection for one batch of plain reads."""
        return _ReadConnection(self.read_engine)

    async def ping(self) -> None:
        """Run `SELECT 1` (raises when the database is unreachable); callers bound the time."""
        async with self.read_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        await self.read_engine.dispose()
        if self.sqlite is not None:
            await self.sqlite.close_all()


class _ReadConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        self._connection = await self._engine.connect()
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._connection is not None
        await self._connection.close()
