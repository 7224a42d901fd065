"""Start-up checks and migrations: dependencies as pinned, the database reachable and current, Redis answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import Database
from app.engine.compat import ENGINE_DISTRIBUTIONS, IncompatibleDependency, check_installed
from app.settings import Settings

# Package data, so an installed wheel migrates without a checkout or an alembic.ini.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class NotReady(Exception):
    """A backing service is unusable; the message names the setting."""


def alembic_config(settings: Settings) -> Config:
    """Alembic configuration built in code: the packaged migrations and the configured URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = settings.database_url
    # Data migrations that seal personal fields (0006) use the configured DATA_KEYS.
    config.attributes["settings"] = settings
    config.attributes["configure_logging"] = False
    return config


def _unreachable(error: BaseException) -> NotReady:
    reason = str(getattr(error, "orig", None) or error).splitlines()[0]
    return NotReady(f"SHOPGRAPH_DATABASE_URL: cannot reach the database ({reason})")


def _check_sqlite_directory(database_url: str) -> None:
    # SQLite cannot create directories. Saying so up front also avoids aiosqlite's worker
    # thread reporting a failed connect to an event loop that has already closed.
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    directory = Path(url.database).expanduser().resolve().parent
    if not directory.is_dir():
        raise NotReady(
            f"SHOPGRAPH_DATABASE_URL: cannot reach the database (no directory {directory})"
        )


async def _check_connection(database_url: str) -> None:
    _check_sqlite_directory(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        raise _unreachable(error) from None
    finally:
        await engine.dispose()


def run_migrations(settings: Settings, revision: str = "head") -> None:
    """alembic upgrade; NotReady when the database cannot be reached."""
    # Connect first: a missing database or a refused login is a setting to fix,
    # not a traceback; errors of the migrations themselves still show in full.
    asyncio.run(_check_connection(settings.database_url))
    try:
        command.upgrade(alembic_config(settings), revision)
    except OSError as error:
        raise NotReady(f"SHOPGRAPH_DATABASE_URL: cannot reach the database ({error})") from None


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def check_ready(settings: Settings) -> Database:
    """Check dependency versions; connect to the database (and Redis); check migrations."""
    try:
        # The engine's, the fast reads' and the server protocol's private names were checked
        # on these ranges.
        check_installed([*ENGINE_DISTRIBUTIONS, "sqlalchemy", "uvicorn"])
    except IncompatibleDependency as error:
        raise NotReady(f"dependencies: {error}") from None
    _check_sqlite_directory(settings.database_url)
    db = Database.from_settings(settings)
    try:
        async with db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current = await connection.run_sync(_current_revision)
    except Exception as error:
        await db.dispose()
        raise _unreachable(error) from None
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    if current != head:
        await db.dispose()
        raise NotReady(
            f"SHOPGRAPH_DATABASE_URL: the database is at migration {current or 'none'}, "
            f"not {head}; run `shopgraph migrate`"
        )
    if settings.redis_url:
        await _check_redis(settings.redis_url)
    return db


async def _check_redis(url: str) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        raise NotReady(f"SHOPGRAPH_REDIS_URL: cannot reach Redis ({error})") from None
    finally:
        await client.aclose()
