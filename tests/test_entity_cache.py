"""The entity cache behind the loaders: cached batches run no SQL, and a commit is never hidden."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.loaders.cached import ReadsOfOneTurn
from app.platform.cache import Entry, MemoryTaggedCache, Snapshot, TaggedCache
from tests.caching_docs import LISTING_WITH_VIEWER, PRODUCT, UPDATE_PRODUCT, UPDATE_VARIANT
from tests.conftest import Backend
from tests.private_shop import Shop, private_shop


@pytest.fixture
async def shop(backend: Backend, tmp_path: Path) -> AsyncIterator[Shop]:
    """A private shop served with its caches on."""
    async with private_shop(backend, tmp_path, "entitycache", cache_enabled=True) as made:
        yield made


async def _run(shop: Shop, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await shop.anonymous.post(query, variables)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body  # type: ignore[no-any-return]


async def test_a_loader_batch_whose_keys_are_all_cached_runs_no_sql(shop: Shop) -> None:
    # given a listing read once (a PRIVATE field beside it: the response itself is not cached)
    cold = await _run(shop, LISTING_WITH_VIEWER)
    assert cold["extensions"]["debug"]["sqlStatements"] > 0
    assert cold["extensions"]["debug"]["cache"]["entity"]["misses"] > 0

    # when it is read again
    warm = await _run(shop, LISTING_WITH_VIEWER)

    # then every loader batch was answered by the cache: the same data, no SQL
    debug = warm["extensions"]["debug"]
    assert warm["data"] == cold["data"]
    assert debug["sqlStatements"] == 0
    assert debug["cache"] == {
        "entity": {"hits": debug["cache"]["entity"]["hits"], "misses": 0},
        "response": None,
    }
    assert debug["cache"]["entity"]["hits"] >= 4  # page, variants, images, categories


@dataclass(eq=False)
class CountedReads:
    """The app's own cache store, with the number of keys of each read noted."""

    store: TaggedCache
    reads: list[int] = field(default_factory=list)

    async def read(self, keys: Sequence[str]) -> Snapshot | None:
        self.reads.append(len(keys))
        return await self.store.read(keys)

    async def fill(self, snapshot: Snapshot, entries: Sequence[Entry], ttl_seconds: int) -> int:
        return await self.store.fill(snapshot, entries, ttl_seconds)

    async def invalidate(self, tags: Sequence[str]) -> None:
        await self.store.invalidate(tags)


async def test_the_batches_of_sibling_fields_share_one_cache_read(shop: Shop) -> None:
    # given a warm cache, its reads counted from now on
    cold = await _run(shop, LISTING_WITH_VIEWER)
    caching = shop.app.state.caching
    counted = CountedReads(caching.cache)
    caching.cache = counted
    try:
        # when the listing is read again
        warm = await _run(shop, LISTING_WITH_VIEWER)
    finally:
        caching.cache = counted.store

    # then one read per level of the listing, not per loader: the page; the categories,
    # variants and images of its products together; their parent categories
    assert warm["data"] == cold["data"]
    assert warm["extensions"]["debug"]["sqlStatements"] == 0
    products = len(warm["data"]["products"]["edges"])
    assert len(counted.reads) == 3, counted.reads
    assert counted.reads[0] == 1 and counted.reads[1] > 2 * products


@dataclass
class CountedMemoryCache(MemoryTaggedCache):
    """The embedded cache, counting its reads."""

    reads: int = 0

    async def read(self, keys: Sequence[str]) -> Snapshot | None:
        self.reads += 1
        return await super().read(keys)


async def test_reads_started_in_one_turn_are_one_store_read_and_later_ones_another() -> None:
    # given a store holding two entries
    store = CountedMemoryCache()
    snapshot = await store.read([])
    assert snapshot is not None
    await store.fill(snapshot, [Entry("a", b"A", ["t"]), Entry("c", b"C", ["t"])], 60)
    store.reads = 0
    reads = ReadsOfOneTurn(store)

    # when two batches read in one turn, and one more after them
    first, second = await asyncio.gather(reads.read(["a", "b"]), reads.read(["c"]))
    third = await reads.read(["a"])

    # then each got its own keys' values, the first two from one store read
    assert first is not None and second is not None and third is not None
    assert (first.values, second.values, third.values) == ([b"A", None], [b"C"], [b"A"])
    assert store.reads == 2


async def test_a_cancelled_batch_leaves_the_read_its_siblings_wait_for() -> None:
    # given two batches waiting for one read
    store = CountedMemoryCache()
    reads = ReadsOfOneTurn(store)
    cancelled = asyncio.ensure_future(reads.read(["a"]))
    sibling = asyncio.ensure_future(reads.read(["b"]))
    await asyncio.sleep(0)

    # when one is cancelled (its field failed)
    cancelled.cancel()

    # then the other still gets its answer
    found = await sibling
    assert found is not None and found.values == [None]
    assert cancelled.cancelled() and store.reads == 1


async def test_after_a_mutation_commits_the_entity_cache_never_returns_the_old_value(
    shop: Shop,
) -> None:
    # given a warm cache
    before = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    node = before[0]["node"]
    variant = node["variants"][0]

    # when staff rename the product and reprice its first variant
    renamed = await shop.staff.query(
        UPDATE_PRODUCT, {"id": node["id"], "input": {"name": "Aaa renamed"}}
    )
    assert renamed["updateProduct"]["userErrors"] == []
    repriced = await shop.staff.query(
        UPDATE_VARIANT, {"id": variant["id"], "input": {"price": "1234.56"}}
    )
    assert repriced["updateVariant"]["userErrors"] == []

    # then the next read shows both changes
    after = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    changed = next(edge["node"] for edge in after if edge["node"]["id"] == node["id"])
    assert changed["name"] == "Aaa renamed"
    assert changed["variants"][0]["price"]["amount"] == "1234.56"
    assert changed["priceRange"]["max"]["amount"] == "1234.56"


async def test_staff_reads_neither_read_nor_poison_the_public_cache(shop: Shop) -> None:
    # given a published product the public has read (and so cached)
    edges = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    product_id = edges[1]["node"]["id"]
    seen = await _run(shop, PRODUCT + " ", {"id": product_id})  # (a space: another document)
    assert seen["data"]["product"]["isPublished"] is True

    # when staff unpublish it and read it themselves (they still see it)
    hidden = await shop.staff.query(
        UPDATE_PRODUCT, {"id": product_id, "input": {"isPublished": False}}
    )
    assert hidden["updateProduct"]["userErrors"] == []
    staff_view = await shop.staff.query(PRODUCT, {"id": product_id})
    assert staff_view["product"]["isPublished"] is False

    # then the public no longer sees it, neither by id nor in the listing
    gone = await _run(shop, PRODUCT + " ", {"id": product_id})
    assert gone["data"]["product"] is None
    listed = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    assert product_id not in [edge["node"]["id"] for edge in listed]
