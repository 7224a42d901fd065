"""Change events: recorded inside a service's transaction, published only after it commits."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app.db import Database
from app.db.work import UnrecordedWrite
from app.models import Category
from app.platform.events import Change
from tests.conftest import Backend
from tests.private_shop import private_shop

APP = Path(__file__).resolve().parents[1] / "app"
CREATE_PRODUCT = """
mutation ($input: ProductCreateInput!) {
  createProduct(input: $input) { product { id } userErrors { code } }
}
"""


def test_services_open_transactions_only_through_a_unit_of_work() -> None:
    # given every service and resolver module
    modules = [
        *sorted((APP / "services").rglob("*.py")),
        *sorted((APP / "resolvers").rglob("*.py")),
    ]
    assert len(modules) > 5

    # when their sources are searched for a bare transaction
    bare = [
        str(path.relative_to(APP.parent))
        for path in modules
        if re.search(r"\.engine\.(begin|connect)\(", path.read_text(encoding="utf-8"))
    ]

    # then none commits outside db.unit_of_work() (whose writes are checked for changes)
    assert bare == []


async def test_a_write_to_a_cached_table_without_a_recorded_change_is_refused(
    backend: Backend,
) -> None:
    # given a unit of work that inserts a category and records nothing
    db = Database.from_settings(backend.settings())
    published: list[object] = []

    async def after_commit(changes: object) -> None:
        published.append(changes)

    db.after_commit = after_commit
    slug = f"unrecorded-{uuid.uuid4().hex[:8]}"
    try:
        # when it ends
        with pytest.raises(UnrecordedWrite, match="categories"):
            async with db.unit_of_work() as work:
                await work.connection.execute(insert(Category).values(slug=slug, name="x"))

        # then it did not commit, and nothing was published
        async with db.read() as connection:
            found = await connection.execute(select(Category.id).where(Category.slug == slug))
            assert found.first() is None
        assert published == []
    finally:
        await db.dispose()


async def test_changes_go_out_after_commit_and_never_on_rollback(
    backend: Backend, tmp_path: Path
) -> None:
    async with private_shop(backend, tmp_path, "events") as shop:
        # given a subscriber to the change bus
        bus = shop.app.state.caching.bus
        received: asyncio.Queue[object] = asyncio.Queue()

        subscribed = asyncio.Event()

        async def listen() -> None:
            async with bus.subscription() as batches:
                subscribed.set()
                async for changes in batches:
                    await received.put(changes)

        listener = asyncio.create_task(listen())
        await asyncio.wait_for(subscribed.wait(), timeout=5)
        try:
            # when a mutation fails (a slug that is taken: the transaction rolls back)
            taken = await shop.value("SELECT slug FROM products LIMIT 1")
            body = await shop.staff.query(
                CREATE_PRODUCT, {"input": {"name": "Twin", "slug": taken}}
            )
            assert body["createProduct"]["userErrors"][0]["code"] == "ALREADY_EXISTS"
            # and then one commits
            body = await shop.staff.query(CREATE_PRODUCT, {"input": {"name": "Fresh"}})
            created = body["createProduct"]["product"]["id"]
            new_id = await shop.value("SELECT max(id) FROM products")

            # then exactly the committed one was published: the product and the listings
            changes = await asyncio.wait_for(received.get(), timeout=5)
            assert list(changes) == [Change("Product", new_id), Change.listing("Product")]
            assert created
            assert received.empty()
        finally:
            listener.cancel()
