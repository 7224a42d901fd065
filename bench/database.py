"""The benchmark database: created, migrated and seeded once, then reused while it holds the seed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from procs import run_checked

PRODUCTS = 10_000
RANDOM_SEED = 42

# The bench database's personal-data keys. The database outlives a run, so the seed and
# every server of every run must seal and open with the same keys; its data is synthetic,
# so fixed keys derived from a label are fine here (never in a real deployment).
BENCH_KEY_ID = "bench"


def _bench_key(label: str) -> str:
    return base64.b64encode(hashlib.sha256(f"shopgraph-bench:{label}".encode()).digest()).decode()


KEY_ENV = {
    "SHOPGRAPH_DATA_KEYS": f"{BENCH_KEY_ID}:{_bench_key('data')}",
    "SHOPGRAPH_DATA_KEY_ID": BENCH_KEY_ID,
    "SHOPGRAPH_DATA_HASH_KEY": _bench_key("hash"),
}


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """Where the seeded database is, in the spellings each client wants."""

    host: str
    port: int
    user: str
    name: str

    def dsn(self, port: int | None = None) -> str:
        """postgresql://... for asyncpg (and the floor), optionally through another port."""
        return f"postgresql://{self.user}@{self.host}:{port or self.port}/{self.name}"

    def sqlalchemy_url(self, port: int | None = None) -> str:
        """SHOPGRAPH_DATABASE_URL for shopgraph."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{port or self.port}/{self.name}"

    def admin_dsn(self) -> str:
        """The maintenance database, to create or drop ours."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"


async def _product_count(db: BenchDatabase) -> int | None:
    """How many products the database holds; None when it or the table does not exist, or
    when its rows are sealed with other keys than the bench's (an older seed)."""
    admin = await asyncpg.connect(db.admin_dsn())
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db.name)
    finally:
        await admin.close()
    if not exists:
        return None
    connection = await asyncpg.connect(db.dsn())
    try:
        if await connection.fetchval("SELECT to_regclass('public.products')") is None:
            return None
        sealed_with = await connection.fetchval("SELECT email FROM users LIMIT 1")
        if sealed_with is not None and not sealed_with.startswith(f"sg1.{BENCH_KEY_ID}."):
            return None  # sealed with other keys (an older seed): unreadable by the servers
        return int(await connection.fetchval("SELECT count(*) FROM products"))
    finally:
        await connection.close()


async def _recreate(db: BenchDatabase) -> None:
    """Drop the database (closing its sessions) and create it again, owned by our user."""
    admin = await asyncpg.connect(db.admin_dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{db.name}" OWNER "{db.user}"')
    finally:
        await admin.close()


async def _vacuum_analyze(db: BenchDatabase) -> None:
    """Fresh statistics and visibility maps, so plans do not change under the benchmark."""
    connection = await asyncpg.connect(db.dsn())
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def prepare(db: BenchDatabase, shopgraph: Path, say: Callable[[str], None]) -> str:
    """Make sure the database is migrated and holds the fixed seed; returns what was done."""
    env = {**os.environ, **KEY_ENV, "SHOPGRAPH_DATABASE_URL": db.sqlalchemy_url()}
    count = asyncio.run(_product_count(db))
    if count == PRODUCTS:
        run_checked([str(shopgraph), "migrate"], env=env, timeout=120)
        return f"reused {db.name} ({PRODUCTS} products)"
    say(
        f"{db.name} holds {count if count is not None else 'no'} products (or rows sealed with "
        "other keys): recreating and seeding it"
    )
    started = time.perf_counter()
    asyncio.run(_recreate(db))
    run_checked([str(shopgraph), "migrate"], env=env, timeout=120)
    seeded = run_checked(
        [str(shopgraph), "seed", "--products", str(PRODUCTS), "--random-seed", str(RANDOM_SEED)],
        env=env,
        timeout=600,
    ).strip()
    asyncio.run(_vacuum_analyze(db))
    say(seeded)
    return f"created and seeded {db.name} in {time.perf_counter() - started:.0f}s ({seeded})"


async def _product_page_slug(db: BenchDatabase) -> str:
    connection = await asyncpg.connect(db.dsn())
    try:
        slug = await connection.fetchval(
            """
            SELECT slug FROM products
            WHERE is_published AND price_min_minor IS NOT NULL
            ORDER BY (rating_count >= 10) DESC, id
            LIMIT 1
            """
        )
    finally:
        await connection.close()
    if slug is None:
        raise RuntimeError(f"{db.name} has no published product")
    return str(slug)


def product_page_slug(db: BenchDatabase) -> str:
    """W2's product: the first published product with a price and at least 10 reviews."""
    return asyncio.run(_product_page_slug(db))


async def _activity(db: BenchDatabase) -> tuple[int, int]:
    connection = await asyncpg.connect(db.admin_dsn())
    try:
        row = await connection.fetchrow(
            "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            db.name,
        )
    finally:
        await connection.close()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def activity(db: BenchDatabase) -> tuple[int, int]:
    """(sessions opened, transactions ended) so far in the database, from pg_stat_database.

    Backends report these when they exit (and, while alive, at most once a second), so
    read them when no server of the workload is connected any more.
    """
    return asyncio.run(_activity(db))


async def _server_version(db: BenchDatabase) -> str:
    connection = await asyncpg.connect(db.dsn())
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def server_version(db: BenchDatabase) -> str:
    """PostgreSQL's version string."""
    return asyncio.run(_server_version(db))
