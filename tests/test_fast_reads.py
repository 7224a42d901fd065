"""The fast read path of loader batches on PostgreSQL gives the rows SQLAlchemy gives.

Every loader statement shape runs both ways, through the loaders themselves, and the
rows must agree in names, values and Python types. The path must also count its
statements, keep one SQL text whatever the batch size, and fail and recover like the
SQLAlchemy path when a connection is lost or a statement is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Row, Select, func, insert, select, tuple_
from sqlalchemy.engine import make_url

from app.db import Database, count_statements
from app.db.checks import run_migrations
from app.loaders import accounts, catalog
from app.loaders.base import BatchLoader
from app.loaders.products import (
    ProductCountKey,
    ProductCountLoader,
    ProductFilterSpec,
    ProductOrder,
    ProductPageKey,
    ProductPagesLoader,
    ProductSortField,
    sort_value,
)
from app.models import (
    Address,
    Base,
    Cart,
    CartLine,
    OutboxJob,
    Partner,
    RefreshToken,
    TrustedDocument,
)
from app.models.base import utcnow
from app.models.orders import CheckoutKey, Order, OrderLine, Payment, PaymentEvent
from app.platform.crypto import DataCipher
from app.platform.pagination import Cursor, PageRequest
from app.services.seed import seed_catalog
from tests.conftest import Backend, in_thread, make_backend

categories = catalog.categories
products = catalog.products
variants = catalog.variants
reviews = catalog.reviews
users = catalog.users


def _described(rows: Sequence[Row[Any]]) -> list[list[tuple[str, Any, type, Any]]]:
    """Each value of each row with its name, Python type and (for datetimes) time zone."""
    return [
        [
            (name, value, type(value), getattr(value, "tzinfo", None))
            for name, value in zip(row._fields, row, strict=True)
        ]
        for row in rows
    ]


async def _with_sqlalchemy(
    db: Database, stmt: Select[Any], parameters: dict[str, Any] | None = None
) -> Sequence[Row[Any]]:
    async with db.read() as connection:
        return (await connection.execute(stmt, parameters)).all()


def assert_same_rows(fast: Sequence[Row[Any]], slow: Sequence[Row[Any]]) -> None:
    """Same names, values, types and time zones; attribute access reads the same values."""
    assert _described(fast) == _described(slow)
    for fast_row, slow_row in zip(fast, slow, strict=True):
        assert isinstance(fast_row, Row)
        for name in slow_row._fields:
            assert getattr(fast_row, name) == getattr(slow_row, name)
        assert dict(fast_row._mapping) == dict(slow_row._mapping)


class ComparedReads:
    """Patches BatchLoader.fetch: each loader statement runs both ways and must agree."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.row_counts: list[int] = []

    async def fetch(
        self, stmt: Select[Any], parameters: dict[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """The fast rows, after checking them against SQLAlchemy's."""
        assert self.db.fast_reads is not None
        fast = await self.db.fast_reads.fetch(stmt, parameters)
        assert_same_rows(fast, await _with_sqlalchemy(self.db, stmt, parameters))
        self.row_counts.append(len(fast))
        return fast


@pytest.fixture(scope="module")
def postgres(backend: Backend) -> Backend:
    """The shared database, when it is PostgreSQL (the only backend with a fast path)."""
    if backend.name != "postgres":
        pytest.skip("the fast read path is PostgreSQL only")
    return backend


@pytest.fixture(scope="module")
async def pg_db(
    postgres: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A private seeded PostgreSQL database with a row in every table."""
    made = await make_backend("postgres", tmp_path_factory.mktemp("fast_reads"), "fast_reads")
    settings = made.settings()
    in_thread(run_migrations, settings)
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as connection:
            await seed_catalog(
                connection,
                products=24,
                random_seed=3,
                currency="EUR",
                cipher=DataCipher.from_settings(settings),
            )
            user_id = (await connection.execute(select(func.min(users.c.id)))).scalar_one()
            now = datetime.now(UTC)
            await connection.execute(
                insert(Address),
                [
                    {
                        "user_id": user_id,
                        "full_name": "Ada Tester",
                        "line1": "1 Main St",
                        "line2": None,
                        "city": "Springfield",
                        "postal_code": "12345",
                        "country": "DE",
                    }
                ],
            )
            await connection.execute(
                insert(RefreshToken),
                [
                    {
                        "user_id": user_id,
                        "family_id": "f" * 36,
                        "token_hash": "0" * 64,
                        "expires_at": now,
                        "used_at": now,
                    }
                ],
            )
            partner_id = (
                await connection.execute(
                    insert(Partner).returning(Partner.id),
                    [
                        {
                            "name": "Acme",
                            "client_id": "acme",
                            "secret_hash": "x",
                            "scopes": ["catalog:read"],
                        }
                    ],
                )
            ).scalar_one()
            await connection.execute(
                insert(TrustedDocument),
                [
                    {
                        "client": "Acme",
                        "partner_id": partner_id,
                        "sha256": "a" * 64,
                        "name": "Count",
                        "body": "query Count { products { totalCount } }",
                    }
                ],
            )
            cart_id = (
                await connection.execute(
                    insert(Cart).returning(Cart.id), [{"token": "t" * 32, "user_id": user_id}]
                )
            ).scalar_one()
            variant_id = (await connection.execute(select(func.min(variants.c.id)))).scalar_one()
            await connection.execute(
                insert(CartLine), [{"cart_id": cart_id, "variant_id": variant_id, "quantity": 2}]
            )
            await _an_order(connection, user_id=user_id, cart_id=cart_id, variant_id=variant_id)
            await connection.execute(
                insert(OutboxJob),
                [
                    {"name": "order_mail", "key": "order-mail:1:confirmation",
                     "payload": '{"order_id": 1, "kind": "confirmation"}', "attempts": 1,
                     "relayed_at": utcnow(), "completed_at": utcnow(), "locked_until": None,
                     "last_error": "MailError: the SMTP server answered 451"}
                ],
            )  # fmt: skip
        yield db
    finally:
        await db.dispose()


async def _an_order(connection: Any, *, user_id: int, cart_id: int, variant_id: int) -> None:
    """An order with a line, a payment with an event, and its checkout key (raw rows)."""
    order_id = (
        await connection.execute(
            insert(Order).returning(Order.id),
            [
                {
                    "number": "SG-000001",
                    "status": "PAID",
                    "user_id": user_id,
                    "currency": "EUR",
                    "subtotal_minor": 1998,
                    "shipping_minor": 0,
                    "total_minor": 1998,
                    "ship_full_name": "sg1.dev.sealed",
                    "ship_line1": "sg1.dev.sealed",
                    "ship_line2": None,
                    "ship_city": "sg1.dev.sealed",
                    "ship_postal_code": "sg1.dev.sealed",
                    "ship_country": "DE",
                }
            ],
        )
    ).scalar_one()
    await connection.execute(
        insert(OrderLine),
        [
            {
                "order_id": order_id,
                "variant_id": variant_id,
                "sku": "SKU-1",
                "product_name": "A product",
                "variant_name": "Default",
                "unit_price_minor": 999,
                "currency": "EUR",
                "quantity": 2,
            }
        ],
    )
    payment_id = (
        await connection.execute(
            insert(Payment).returning(Payment.id),
            [
                {
                    "order_id": order_id,
                    "gateway": "test",
                    "status": "CAPTURED",
                    "amount_minor": 1998,
                    "currency": "EUR",
                    "authorization_ref": "auth_1",
                    "capture_ref": "cap_1",
                }
            ],
        )
    ).scalar_one()
    await connection.execute(
        insert(PaymentEvent),
        [
            {
                "payment_id": payment_id,
                "status": "CAPTURED",
                "gateway_ref": "cap_1",
                "amount_minor": 1998,
                "note": None,
            }
        ],
    )
    await connection.execute(
        insert(CheckoutKey),
        [
            {
                "user_id": user_id,
                "idempotency_key": "k1",
                "cart_id": cart_id,
                "fingerprint": "f" * 64,
                "order_id": order_id,
            }
        ],
    )


@pytest.fixture
def compared(pg_db: Database, monkeypatch: pytest.MonkeyPatch) -> ComparedReads:
    """Loaders whose every statement is checked against SQLAlchemy's rows."""
    reads = ComparedReads(pg_db)

    async def fetch(
        loader: BatchLoader[Any, Any], stmt: Select[Any], parameters: dict[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        return await reads.fetch(stmt, parameters)

    monkeypatch.setattr(BatchLoader, "fetch", fetch)
    return reads


async def _ids(db: Database, stmt: Select[Any]) -> list[Any]:
    return [row[0] for row in await _with_sqlalchemy(db, stmt)]


# --- every table, every column type ------------------------------------------------------------


async def test_every_column_of_every_table_reads_the_same(pg_db: Database) -> None:
    assert pg_db.fast_reads is not None
    for table in Base.metadata.sorted_tables:
        stmt = select(table).order_by(*table.primary_key.columns)

        fast = await pg_db.fast_reads.fetch(stmt)

        assert fast, f"no rows in {table.name}"
        assert_same_rows(fast, await _with_sqlalchemy(pg_db, stmt))


# --- the loaders' statements -------------------------------------------------------------------


async def test_catalog_and_account_loaders_read_the_same(
    pg_db: Database, compared: ComparedReads
) -> None:
    product_ids = await _ids(pg_db, select(products.c.id).order_by(products.c.id))
    slugs = await _ids(pg_db, select(products.c.slug).order_by(products.c.id))
    category_ids = await _ids(pg_db, select(categories.c.id).order_by(categories.c.id))
    category_slugs = await _ids(pg_db, select(categories.c.slug))
    parent_ids = await _ids(pg_db, select(categories.c.parent_id).distinct())
    variant_ids = await _ids(pg_db, select(variants.c.id))
    review_ids = await _ids(pg_db, select(reviews.c.id))
    user_ids = await _ids(pg_db, select(users.c.id))
    address_ids = await _ids(pg_db, select(accounts.addresses.c.id))
    address_user_ids = await _ids(pg_db, select(accounts.addresses.c.user_id))

    await catalog.CategoryByIdLoader(pg_db).load_batch(category_ids)
    await catalog.CategoryBySlugLoader(pg_db).load_batch(category_slugs)
    await catalog.CategoriesByParentIdLoader(pg_db).load_batch(
        [catalog.ROOT_PARENT, *(parent for parent in parent_ids if parent is not None)]
    )
    for staff in (False, True):
        await catalog.ProductByIdLoader(pg_db, include_unpublished=staff).load_batch(product_ids)
        await catalog.ProductBySlugLoader(pg_db, include_unpublished=staff).load_batch(slugs)
        await catalog.VariantByIdLoader(pg_db, include_unpublished=staff).load_batch(variant_ids)
        await catalog.ReviewByIdLoader(pg_db, include_unpublished=staff).load_batch(review_ids)
    await catalog.VariantsByProductIdLoader(pg_db).load_batch(product_ids)
    await catalog.ImagesByProductIdLoader(pg_db).load_batch(product_ids)
    await catalog.UserNameByIdLoader(pg_db).load_batch(user_ids)
    await accounts.UserByIdLoader(pg_db).load_batch(user_ids)
    await accounts.AddressByIdLoader(pg_db).load_batch(address_ids)
    await accounts.AddressesByUserIdLoader(pg_db).load_batch(address_user_ids)

    assert len(compared.row_counts) == 17
    assert all(compared.row_counts), compared.row_counts


async def test_review_pages_read_the_same(pg_db: Database, compared: ComparedReads) -> None:
    newest = (
        await _with_sqlalchemy(
            pg_db, select(reviews).order_by(reviews.c.created_at.desc(), reviews.c.id).limit(1)
        )
    )[0]
    product_ids = await _ids(pg_db, select(reviews.c.product_id).distinct())
    cursor = Cursor(sort=catalog.REVIEW_SORT.name, value=newest.created_at, id=newest.id)
    pages = [
        PageRequest(limit=2, forward=True),
        PageRequest(limit=2, forward=True, after=cursor),
        PageRequest(limit=2, forward=False, before=cursor),
    ]

    await catalog.ReviewPagesByProductIdLoader(pg_db).load_batch(
        [(product_id, page) for page in pages for product_id in product_ids]
    )

    assert len(compared.row_counts) == len(pages)
    assert compared.row_counts[0] > 0


FILTERS = [
    ProductFilterSpec(),
    ProductFilterSpec(search="a", price_min_minor=100, price_max_minor=1_000_000),
    ProductFilterSpec(in_stock=True, rating_min=1.5),
    ProductFilterSpec(in_stock=False),
]


async def test_product_listings_and_counts_read_the_same(
    pg_db: Database, compared: ComparedReads
) -> None:
    category = (await _with_sqlalchemy(pg_db, select(categories).order_by(categories.c.id)))[0]
    scopes = [None, *await _ids(pg_db, select(categories.c.id))]
    filters = [
        *FILTERS,
        ProductFilterSpec(category_id=category.id, category_slug=category.slug),
    ]
    staff = ProductPagesLoader(pg_db, include_unpublished=True)
    public = ProductPagesLoader(pg_db)

    for field in ProductSortField:
        for descending in (False, True):
            order = ProductOrder(field=field, descending=descending)
            first = PageRequest(limit=3, forward=True)
            [page] = await staff.load_batch(
                [ProductPageKey(None, ProductFilterSpec(), order, first)]
            )
            row = page.rows[-1]
            cursor = Cursor(order.cursor_sort.name, sort_value(row, field), row.id)
            keys = [
                ProductPageKey(scope, spec, order, request)
                for scope in scopes
                for spec in filters
                for request in (
                    first,
                    PageRequest(limit=3, forward=True, after=cursor),
                    PageRequest(limit=3, forward=False, before=cursor),
                )
            ]
            await public.load_batch(keys)
    await ProductCountLoader(pg_db).load_batch(
        [ProductCountKey(scope, spec) for scope in scopes for spec in filters]
    )

    assert sum(compared.row_counts) > 0


async def test_rating_cursors_may_hold_whole_numbers(
    pg_db: Database, compared: ComparedReads
) -> None:
    # A client's cursor for the RATING sort may carry 4 instead of 4.0.
    order = ProductOrder(field=ProductSortField.RATING)
    cursor = Cursor(order.cursor_sort.name, 4, 1)

    await ProductPagesLoader(pg_db).load_batch(
        [
            ProductPageKey(
                None, ProductFilterSpec(), order, PageRequest(limit=5, forward=True, after=cursor)
            )
        ]
    )

    assert compared.row_counts


# --- SQL text, counting and fallbacks ----------------------------------------------------------


async def test_in_lists_of_any_length_share_one_sql_text_and_are_counted(pg_db: Database) -> None:
    assert pg_db.fast_reads is not None
    ids = await _ids(pg_db, select(categories.c.id).order_by(categories.c.id))

    with count_statements(keep_text=True) as counter:
        for size in (1, 2, len(ids)):
            rows = await pg_db.fast_reads.fetch(
                select(categories).where(categories.c.id.in_(ids[:size]))
            )
            assert [row.id for row in rows] == ids[:size]

    assert counter.count == 3
    assert len(set(counter.statements)) == 1
    assert "= ANY (" in counter.statements[0]


async def test_an_empty_in_list_reads_nothing(pg_db: Database) -> None:
    assert pg_db.fast_reads is not None
    stmt = select(categories).where(categories.c.id.in_([]))

    assert await pg_db.fast_reads.fetch(stmt) == []
    assert await _with_sqlalchemy(pg_db, stmt) == []


async def test_shapes_the_fast_path_cannot_take_run_through_sqlalchemy(pg_db: Database) -> None:
    assert pg_db.fast_reads is not None
    pairs = [
        tuple(row) for row in await _with_sqlalchemy(pg_db, select(products.c.id, products.c.slug))
    ]
    stmt = select(products.c.id).where(tuple_(products.c.id, products.c.slug).in_(pairs[:3]))

    with count_statements() as counter:
        fast = await pg_db.fast_reads.fetch(stmt)

    assert counter.count == 1
    assert sorted(row.id for row in fast) == sorted(pair[0] for pair in pairs[:3])


# --- failures ----------------------------------------------------------------------------------


async def _terminate(database_url: str, pid: int) -> None:
    url = make_url(database_url)
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_lost_connection_raises_and_the_next_read_reconnects(postgres: Backend) -> None:
    db = Database.from_settings(postgres.settings(db_pool_size=1))
    assert db.fast_reads is not None
    stmt = select(func.pg_backend_pid().label("pid"))
    try:
        [before] = await db.fast_reads.fetch(stmt)
        await _terminate(postgres.database_url, before.pid)

        with pytest.raises(Exception):  # noqa: B017 - whatever asyncpg reports
            await db.fast_reads.fetch(stmt)
        [after] = await db.fast_reads.fetch(stmt)

        assert after.pid != before.pid
        assert db.read_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def test_a_lost_connection_also_retires_the_older_pooled_ones(postgres: Backend) -> None:
    # A restarted server dropped them all: as on SQLAlchemy's path, none is handed out again.
    db = Database.from_settings(postgres.settings(db_pool_size=2))
    assert db.fast_reads is not None
    stmt = select(func.pg_backend_pid().label("pid"))
    try:
        async with db.read_engine.connect() as first, db.read_engine.connect() as second:
            pids = {(await connection.execute(stmt)).scalar_one() for connection in (first, second)}
        await _terminate(postgres.database_url, min(pids))
        for _ in range(len(pids)):  # until the read lands on the lost connection
            try:
                await db.fast_reads.fetch(stmt)
            except Exception:  # whatever asyncpg reports
                break
        else:
            pytest.fail("no read used the terminated connection")

        after = {(await db.fast_reads.fetch(stmt))[0].pid for _ in range(len(pids))}

        assert after.isdisjoint(pids)
    finally:
        await db.dispose()


async def test_a_cancelled_read_gives_its_connection_back(pg_db: Database) -> None:
    assert pg_db.fast_reads is not None
    slow = select(func.pg_sleep(5).label("slept"))

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pg_db.fast_reads.fetch(slow), timeout=0.2)

    assert pg_db.read_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    [row] = await pg_db.fast_reads.fetch(select(func.count().label("n")).select_from(categories))
    assert row.n > 0


# --- SQLite ------------------------------------------------------------------------------------


def test_sqlite_keeps_the_sqlalchemy_path(tmp_path: Path) -> None:
    settings = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", None).settings()

    assert Database.from_settings(settings).fast_reads is None
