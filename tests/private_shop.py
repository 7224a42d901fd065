"""A private, seeded shop for tests that write to the catalog, so the shared database stays as seeded.

Tests of the catalog read API count categories, products and reviews of the shared
database; tests that create and change catalog rows get a database of their own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from app.db import Database
from app.db.checks import run_migrations
from app.main import create_app
from app.platform.crypto import DataCipher
from app.services.seed import seed_catalog
from app.settings import Settings
from tests.conftest import Backend, GraphQLClient, in_thread, make_backend, signed_in_client
from tests.table_snapshot import Snapshot, snapshot_tables

PRIVATE_SEED_PRODUCTS = 12


@dataclass(frozen=True)
class Shop:
    """A private shop: its settings, SQL access, an HTTP client and the usual callers."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    anonymous: GraphQLClient
    customer: GraphQLClient
    other_customer: GraphQLClient
    staff: GraphQLClient
    app: Starlette

    async def rows(self, query: str, **params: Any) -> list[Any]:
        """Every row of a plain SQL query."""
        async with self.db.read() as connection:
            return list((await connection.execute(text(query), params)).all())

    async def value(self, query: str, **params: Any) -> Any:
        """The one value of a one-row, one-column query."""
        (row,) = await self.rows(query, **params)
        return row[0]

    async def snapshot(self) -> Snapshot:
        """Every row of every table (tests/table_snapshot.py), to prove that nothing was written,
        taken once the server's background work is still: the outbox relay marks the rows it
        sends (and, where the server runs its jobs, they write tables too)."""
        await self.settle()
        return await snapshot_tables(self.db)

    async def settle(self, *, within: float = 20.0) -> None:
        """Where the server relays jobs, relay every due one now (under the relay's own lock,
        so a round already under way ends first); where it runs them, wait until all have run."""
        jobs = self.app.state.jobs
        if jobs.relaying:
            await jobs.relay.relay_once()
        if self.settings.runs_jobs_in_process:
            await jobs_idle(self, within=within)


async def jobs_idle(shop: Shop, *, within: float = 20.0) -> None:
    """Wait until the shop's jobs have all run (done or failed): its tables are still then."""
    for _ in range(int(within / 0.05)):
        pending = await shop.value(
            "SELECT count(*) FROM job_outbox WHERE completed_at IS NULL AND failed_at IS NULL"
        )
        if pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pending} jobs still pending after {within} s")


@asynccontextmanager
async def private_shop(
    backend: Backend, tmp_dir: Path, label: str, **overrides: Any
) -> AsyncIterator[Shop]:
    """A migrated, seeded database of the same kind as `backend`, served in-process."""
    made = await make_backend(backend.name, tmp_dir, label)
    # These tests send many mutations quickly; rate limits have tests of their own.
    # A recreated database must not meet the cache entries of the one it replaced.
    prefix = f"{made.settings().cache_key_prefix}{uuid.uuid4().hex[:8]}:"
    settings = made.settings(
        rate_limit_capacity=10_000_000,
        rate_limit_restore_rate=1_000_000,
        **{"cache_key_prefix": prefix, **overrides},
    )
    in_thread(run_migrations, settings)
    db = Database.from_settings(settings)
    async with db.engine.begin() as connection:
        await seed_catalog(
            connection,
            products=PRIVATE_SEED_PRODUCTS,
            random_seed=11,
            currency="EUR",
            cipher=DataCipher.from_settings(settings),
        )
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
            ) as http,
        ):
            yield Shop(
                settings=settings,
                db=db,
                http=http,
                anonymous=GraphQLClient(http),
                customer=await signed_in_client(
                    http, settings, role="CUSTOMER", email=f"customer@{label}.example"
                ),
                other_customer=await signed_in_client(
                    http, settings, role="CUSTOMER", email=f"other@{label}.example"
                ),
                staff=await signed_in_client(
                    http, settings, role="STAFF", email=f"staff@{label}.example"
                ),
                app=app,
            )
    finally:
        await db.dispose()
