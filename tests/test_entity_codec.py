"""The entity cache's value format: what a loader returns comes back from the cache the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Row, text

from app.db import Database
from app.db.compat import make_rows, row_metadata
from app.loaders import Loaders
from app.loaders.base import BatchLoader
from app.loaders.cached import EntityCache
from app.loaders.catalog import ROOT_PARENT
from app.loaders.codec import decode_value, encode_value
from app.loaders.paging import Page
from app.loaders.products import (
    ProductCountKey,
    ProductFilterSpec,
    ProductOrder,
    ProductPageKey,
    ProductSortField,
)
from app.models import Role
from app.platform.cache import CacheStats, MemoryTaggedCache
from app.platform.pagination import PageRequest
from tests.conftest import Backend

MISSING = 987_654_321  # no row has this id


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    """The shared, seeded database (read only here)."""
    made = Database.from_settings(backend.settings())
    try:
        yield made
    finally:
        await made.dispose()


async def _ids(db: Database, query: str) -> list[Any]:
    async with db.read() as connection:
        return list((await connection.execute(text(query))).scalars())


def _all_cached_loaders() -> set[str]:
    def subclasses(cls: type[Any]) -> set[type[Any]]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(sub) for sub in found))

    return {cls.cached_as for cls in subclasses(BatchLoader) if cls.cached_as is not None}


async def _load_every_cached_loader(db: Database, loaders: Loaders) -> dict[str, list[Any]]:
    """Values of every loader that reads through the entity cache: rows, lists, pages, counts."""
    products = await _ids(db, "SELECT id FROM products WHERE is_published ORDER BY id LIMIT 6")
    slugs = await _ids(db, "SELECT slug FROM products WHERE is_published ORDER BY id LIMIT 3")
    categories = await _ids(db, "SELECT id FROM categories ORDER BY id LIMIT 4")
    category_slugs = await _ids(db, "SELECT slug FROM categories ORDER BY id LIMIT 2")
    variants = await _ids(db, "SELECT id FROM product_variants ORDER BY id LIMIT 4")
    users = await _ids(db, "SELECT user_id FROM reviews ORDER BY id LIMIT 3")
    first, last = PageRequest(limit=5, forward=True), PageRequest(limit=5, forward=False)
    spec, rated = ProductFilterSpec(), ProductFilterSpec(rating_min=1.0)
    by_rating = ProductOrder(ProductSortField.RATING, descending=True)
    return {
        "category_by_id": await loaders.category_by_id.load_many([*categories, MISSING]),
        "category_by_slug": await loaders.category_by_slug.load_many(category_slugs),
        "categories_by_parent": await loaders.categories_by_parent_id.load_many(
            [ROOT_PARENT, *categories[:2], MISSING]
        ),
        "product_by_id": await loaders.product_by_id.load_many([*products, MISSING]),
        "product_by_slug": await loaders.product_by_slug.load_many([*slugs, "no-such-slug"]),
        "variants_by_product": await loaders.variants_by_product_id.load_many([*products, MISSING]),
        "variant_by_id": await loaders.variant_by_id.load_many([*variants, MISSING]),
        "images_by_product": await loaders.images_by_product_id.load_many([*products, MISSING]),
        "review_pages": await loaders.review_pages_by_product_id.load_many(
            [(product, page) for product in products[:3] for page in (first, last)]
        ),
        "user_name_by_id": await loaders.user_name_by_id.load_many([*users, MISSING]),
        "product_pages": await loaders.product_pages.load_many(
            [
                ProductPageKey(None, spec, ProductOrder(), first),
                ProductPageKey(None, rated, by_rating, last),
                ProductPageKey(categories[0], spec, ProductOrder(), first),
            ]
        ),
        "product_count": await loaders.product_count.load_many(
            [ProductCountKey(None, spec), ProductCountKey(categories[0], rated)]
        ),
    }


def _types(value: Any) -> Any:
    """A value's types all the way down: the value's, and each row's columns and their values'."""
    if isinstance(value, Row):
        return (value._fields, [(type(item), getattr(item, "tzinfo", None)) for item in value])
    if isinstance(value, Page):
        return (Page, _types(value.rows), type(value.has_next), type(value.has_previous))
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


async def test_every_cached_loader_value_comes_back_from_the_cache_equal_with_the_same_types(
    db: Database,
) -> None:
    # given every cached loader's values read from the database, and the same read once
    # through a cache, which fills it
    from_database = await _load_every_cached_loader(db, Loaders(db))
    cache = EntityCache(MemoryTaggedCache(), ttl_seconds=60, stats=CacheStats())
    await _load_every_cached_loader(db, Loaders(db, entity_cache=cache))
    filled = cache.stats.entity_misses

    # when they are read through the cache again
    from_cache = await _load_every_cached_loader(db, Loaders(db, entity_cache=cache))

    # then each came from the cache, equal to the database's and of the same types, for
    # every loader that reads through the cache
    assert cache.stats.entity_misses == filled and cache.stats.entity_hits == filled
    assert set(from_cache) == _all_cached_loaders()
    for loader, values in from_database.items():
        assert from_cache[loader] == values, loader
        assert _types(from_cache[loader]) == _types(values), loader
    products = from_cache["product_by_id"]
    assert isinstance(products[0].created_at, datetime) and products[0].created_at.tzinfo is UTC
    assert isinstance(products[0].rating_average, float)
    assert isinstance(from_cache["variant_by_id"][0].attributes, dict)
    assert from_cache["product_by_id"][-1] is None and from_cache["images_by_product"][-1] == []


def _rows(fields: tuple[str, ...], *records: tuple[Any, ...]) -> list[Row[Any]]:
    return make_rows(row_metadata(fields, [() for _ in fields]), None, records)


def test_a_datetime_column_that_starts_null_comes_back_as_datetimes() -> None:
    # given rows of a nullable timestamp, the first one NULL
    used = datetime(2025, 3, 4, 5, 6, 7, 891_011, tzinfo=UTC)
    rows = _rows(("id", "used_at", "note"), (1, None, "a"), (2, used, None))

    # when they go through the cache's format
    back = decode_value(encode_value(rows))

    # then the later timestamp is a datetime again, not its text
    assert back == rows
    assert back[1].used_at == used and back[1].used_at.tzinfo is UTC
    assert back[0]._fields == ("id", "used_at", "note")


def test_a_page_and_a_count_come_back_as_they_went_in() -> None:
    page = Page(_rows(("id",), (1,), (2,)), has_next=True, has_previous=False)

    assert decode_value(encode_value(page)) == page
    assert decode_value(encode_value(Page([], has_next=False, has_previous=True))) == Page(
        [], has_next=False, has_previous=True
    )
    assert decode_value(encode_value(0)) == 0 and decode_value(encode_value(None)) is None


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1.10"),  # would come back a float
        date(2025, 1, 1),  # would come back text
        Role.STAFF,  # would come back a plain str
        uuid.UUID(int=1),
        float("nan"),  # JSON has neither: would come back None
        float("inf"),
        datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=2))),  # would lose its zone
        b"bytes",
    ],
    ids=repr,
)
def test_a_value_json_would_give_back_changed_is_refused(value: Any) -> None:
    # given rows with such a value after a NULL in the same column
    rows = _rows(("id", "value"), (1, None), (2, value))

    # then it cannot be stored (the loader's value is served uncached)
    with pytest.raises(TypeError):
        encode_value(rows)
    with pytest.raises(TypeError):
        encode_value(True)  # not a count


@pytest.mark.parametrize(
    "raw",
    [
        b'{"o": {"f": ["id"], "d": [], "r": [[1]]}}',  # the format before this one
        b'["id|", "x", [[1]]]',
        b'["id|3", "l", [[1]]]',
        b'["id|0", "o", [[7]]]',
        b'["id,name|", "l", [[1, "a"], [2]]]',
        b'["id|", "l", 7]',
        b'["", "o", []]',
        b'"text"',
        b"[1]",
        b"not json",
    ],
)
def test_an_entry_of_another_format_is_unreadable_not_misread(raw: bytes) -> None:
    # The cache reads such an entry as a miss (app/loaders/cached.py) and loads the key again.
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        decode_value(raw)
