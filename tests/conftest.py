"""Real-service fixtures: every test runs against the embedded SQLite database and, when
SHOPGRAPH_TEST_DATABASE_URL / SHOPGRAPH_TEST_REDIS_URL are set, against PostgreSQL and Redis.

SHOPGRAPH_TEST_BACKENDS ("sqlite", "postgres" or "sqlite,postgres") narrows the set;
SHOPGRAPH_TEST_REQUIRE_SERVICES=1 turns a missing or unreachable service into a failure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.db import Database, StatementCounter, count_statements
from app.db.checks import run_migrations
from app.main import create_app
from app.platform.crypto import DataCipher
from app.platform.logging import configure_logging
from app.services.seed import seed_catalog
from app.settings import Settings
from tests.redis_server import RedisServer

PG_URL = os.environ.get("SHOPGRAPH_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("SHOPGRAPH_TEST_REDIS_URL") or None
REQUIRE_SERVICES = os.environ.get("SHOPGRAPH_TEST_REQUIRE_SERVICES") == "1"
SEED_PRODUCTS = 60
RUN_ID = uuid.uuid4().hex[:12]
# Production refuses to start without the personal-data keys: fixed test keys, as text
# (settings keyword arguments or SHOPGRAPH_* variables alike).
PRODUCTION_DATA_KEYS = {
    "data_keys": "k1:" + base64.b64encode(bytes(range(32))).decode(),
    "data_hash_key": base64.b64encode(bytes(range(32, 64))).decode(),
}


def _backends() -> list[str]:
    explicit = os.environ.get("SHOPGRAPH_TEST_BACKENDS")
    if explicit:
        return [name.strip() for name in explicit.split(",") if name.strip()]
    return ["sqlite", "postgres"] if PG_URL else ["sqlite"]


def pytest_configure(config: pytest.Config) -> None:
    # As the server does: plain structured lines (structlog's default draws rich tracebacks).
    configure_logging(level="WARNING", json_lines=True)
    if REQUIRE_SERVICES and "postgres" in _backends() and not (PG_URL and REDIS_URL):
        raise pytest.UsageError(
            "SHOPGRAPH_TEST_REQUIRE_SERVICES=1 needs SHOPGRAPH_TEST_DATABASE_URL and SHOPGRAPH_TEST_REDIS_URL"
        )


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking set-up (alembic runs its own event loop) off the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


async def recreate_postgres_database(url: str) -> None:
    """Drop and create the database a PostgreSQL URL names."""
    parsed = make_url(url)
    admin = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


@dataclass(frozen=True)
class Backend:
    """Where a test's data lives."""

    name: str
    database_url: str
    redis_url: str | None

    def settings(self, **overrides: Any) -> Settings:
        """Development settings against this backend."""
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "env": "development",
            "debug": True,
            # The suite is one caller on one IP: a budget it cannot exhaust, under a key
            # prefix of its own (Redis outlives the run). Rate-limit tests set their own.
            "rate_limit_capacity": 10_000_000,
            "rate_limit_restore_rate": 1_000_000.0,
            "rate_limit_key_prefix": f"shopgraph-test:{RUN_ID}:",
            "register_max_per_ip": 100_000,  # tests register many accounts from one IP
            # Refusals answered at once: tests count what a burst gets, not how fast.
            "throttled_hold_seconds": 0.0,
            # Tests count SQL statements and write rows directly: they read the database.
            # The caches are tested with caching on (tests/test_*cache*.py).
            "cache_enabled": False,
            # Each test database has its own cache keys in the shared Redis.
            "cache_key_prefix": f"shopgraph-test:{RUN_ID}:{_short_hash(self.database_url)}:",
            # Jobs: the shared app writes them to the outbox but runs none (tests of jobs start
            # their own apps and workers); mail in a directory of the run, a stream per database.
            "jobs_in_process": False,
            "outbox_dir": str(Path(tempfile.gettempdir()) / f"shopgraph-test-{RUN_ID}-outbox"),
            "jobs_stream": f"shopgraph-test:{RUN_ID}:{_short_hash(self.database_url)}:jobs",
        }
        values.update(overrides)
        return Settings(**values)


async def make_backend(name: str, tmp_dir: Path, label: str) -> Backend:
    """A fresh, migrated database of the named kind."""
    if name == "sqlite":
        return Backend(name, f"sqlite+aiosqlite:///{tmp_dir / f'{label}.db'}", None)
    if name != "postgres":
        raise pytest.UsageError(f"unknown backend {name!r}")
    if not PG_URL:
        pytest.skip("SHOPGRAPH_TEST_DATABASE_URL is not set")
    url = make_url(PG_URL)
    database_url = url.set(database=f"{url.database}_{label}").render_as_string(hide_password=False)
    try:
        await recreate_postgres_database(database_url)
    except (OSError, asyncpg.PostgresError) as error:
        if REQUIRE_SERVICES:
            raise
        pytest.skip(f"PostgreSQL unreachable: {error}")
    return Backend(name, database_url, REDIS_URL)


@pytest.fixture(scope="session", params=_backends())
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Backend:
    """The migrated, seeded database shared by read-only tests (one per backend)."""
    made = await make_backend(request.param, tmp_path_factory.mktemp("db"), "main")
    in_thread(run_migrations, made.settings())
    db = Database.from_settings(made.settings())
    try:
        async with db.engine.begin() as connection:
            await seed_catalog(
                connection,
                products=SEED_PRODUCTS,
                random_seed=7,
                currency="EUR",
                cipher=DataCipher.from_settings(made.settings()),
            )
    finally:
        await db.dispose()
    return made


@pytest.fixture(scope="session")
def settings(backend: Backend) -> Settings:
    """Development settings (debug on) for the shared database."""
    return backend.settings()


@pytest.fixture(scope="session")
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process (ASGI), like a real client would."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client


class GraphQLClient:
    """Sends GraphQL documents over HTTP and hands back the decoded response."""

    # What GraphQL-over-HTTP clients send: the GraphQL media type first (400 for requests
    # that fail before execution), application/json as a fallback.
    ACCEPT = "application/graphql-response+json, application/json;q=0.9"

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        self.http = http
        given = dict(headers or {})
        # (Spelled as tests spell it, so `{**client.headers, "Accept": ...}` replaces it.)
        if not any(name.lower() == "accept" for name in given):
            given = {"Accept": self.ACCEPT, **given}
        self.headers = given

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """POST a document; return the raw response."""
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        return await self.http.post("/graphql", json=payload, headers=self.headers, **kwargs)

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a document that must succeed; return `data`."""
        response = await self.post(query, variables)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """POST a document that must fail; return its errors."""
        response = await self.post(query, variables)
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]  # type: ignore[no-any-return]


@asynccontextmanager
async def serving_app(
    settings: Settings, **client_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a fresh app with these settings, started and stopped (`.app`)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://shopgraph.test",
            **client_options,
        ) as http,
    ):
        http.app = app  # type: ignore[attr-defined]
        yield http


@pytest.fixture(scope="session")
def anonymous(app_client: httpx.AsyncClient) -> GraphQLClient:
    """A caller who is not signed in."""
    return GraphQLClient(app_client)


@pytest.fixture
async def sql_statements() -> AsyncIterator[StatementCounter]:
    """Counts the SQL statements that run while the test does (same task, and tasks it starts).

    Async on purpose: pytest-asyncio runs async fixtures and tests in one shared context,
    so the counter set here is the one the test's requests see.
    """
    with count_statements(keep_text=True) as counter:
        yield counter


async def signed_in_client(
    http: httpx.AsyncClient, settings: Settings, *, role: str, email: str
) -> GraphQLClient:
    """A caller with a real user row, a live session and a signed access token."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, select

    from app.models import RefreshToken, Role, User
    from app.platform.sealed_users import seal_user
    from app.platform.tokens import TokenService

    cipher = DataCipher.from_settings(settings)
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as connection:
            user_id = (
                await connection.execute(
                    select(User.id).where(User.email_hash == cipher.search_hash(email))
                )
            ).scalar_one_or_none()
            if user_id is None:
                user_id = (
                    await connection.execute(
                        insert(User).returning(User.id),
                        [
                            {
                                **seal_user(
                                    cipher, email=email, full_name=f"{role.title()} Tester"
                                ),
                                "role": Role(role),
                            }
                        ],
                    )
                ).scalar_one()
            session_id = str(uuid.uuid4())
            await connection.execute(
                insert(RefreshToken),
                [
                    {
                        "user_id": user_id,
                        "family_id": session_id,
                        "token_hash": uuid.uuid4().hex + uuid.uuid4().hex,
                        "expires_at": datetime.now(UTC) + timedelta(days=1),
                    }
                ],
            )
    finally:
        await db.dispose()
    token, _ = TokenService(settings).issue_user_token(
        user_id=user_id, role=role, session_id=session_id
    )
    client = GraphQLClient(http, {"Authorization": f"Bearer {token}"})
    client.user_id = user_id  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="session")
async def customer(app_client: httpx.AsyncClient, settings: Settings) -> GraphQLClient:
    """A signed-in customer."""
    return await signed_in_client(
        app_client, settings, role="CUSTOMER", email="customer@test.example"
    )


@pytest.fixture(scope="session")
async def staff(app_client: httpx.AsyncClient, settings: Settings) -> GraphQLClient:
    """A signed-in staff member."""
    return await signed_in_client(app_client, settings, role="STAFF", email="staff@test.example")


@pytest.fixture(scope="session")
async def admin(app_client: httpx.AsyncClient, settings: Settings) -> GraphQLClient:
    """A signed-in admin."""
    return await signed_in_client(app_client, settings, role="ADMIN", email="admin@test.example")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server of this test's own; killed afterwards."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
async def fleet(
    request: pytest.FixtureRequest, backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    """Live server processes for the subscription tests (tests/subscription_fleet.py)."""
    from tests.subscription_fleet import open_fleet  # it imports this module

    label = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    async with open_fleet(backend, tmp_path_factory.mktemp(label), label) as opened:
        yield opened
