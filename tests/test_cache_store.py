"""The tagged cache's guarantees, on both stores: a fill that predates an invalidation is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.platform.cache import Entry, MemoryTaggedCache, RedisTaggedCache, TaggedCache
from tests.conftest import REDIS_URL, Backend


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[TaggedCache]:
    """The store the backend's server would use: Redis with a prefix of the test's own, or memory."""
    if backend.redis_url is None:
        yield MemoryTaggedCache()
        return
    assert REDIS_URL
    redis = Redis.from_url(REDIS_URL)
    prefix = f"shopgraph-test:store:{uuid.uuid4().hex}:"
    try:
        yield RedisTaggedCache(redis, prefix=prefix)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_a_fill_is_read_back_in_one_read(store: TaggedCache) -> None:
    # given two entries filled after a read that missed them
    snapshot = await store.read(["a", "b", "c"])
    assert snapshot is not None and snapshot.values == [None, None, None]
    stored = await store.fill(
        snapshot, [Entry("a", b"1", ["Product:1"]), Entry("c", b"3", ["Product:3"])], 60
    )

    # when the keys are read again
    again = await store.read(["a", "b", "c"])

    # then both come back, in key order
    assert stored == 2
    assert again is not None and again.values == [b"1", None, b"3"]


async def test_an_invalidation_drops_the_entries_of_its_tags_only(store: TaggedCache) -> None:
    # given entries of two products and of the product listings
    snapshot = await store.read([])
    assert snapshot is not None
    await store.fill(
        snapshot,
        [
            Entry("p1", b"1", ["Product:1"]),
            Entry("p2", b"2", ["Product:2"]),
            Entry("page", b"x", ["Product:list", "Product:1", "Product:2"]),
        ],
        60,
    )

    # when product 1 changes
    await store.invalidate(["Product:1"])

    # then its entry and the page that holds it are gone, product 2's is kept
    after = await store.read(["p1", "p2", "page"])
    assert after is not None and after.values == [None, b"2", None]


async def test_a_value_read_before_a_commit_and_filled_after_its_invalidation_is_refused(
    store: TaggedCache,
) -> None:
    # given a reader that missed, and read the old value from the database
    snapshot = await store.read(["p1"])
    assert snapshot is not None
    # and a writer that committed and invalidated in the meantime
    await store.invalidate(["Product:1"])

    # when the reader fills its (old) value late
    stored = await store.fill(snapshot, [Entry("p1", b"old", ["Product:1"])], 60)

    # then it is refused, and a later read misses (and reads the database)
    assert stored == 0
    after = await store.read(["p1"])
    assert after is not None and after.values == [None]
    # while a change to another entity does not refuse it
    await store.invalidate(["Product:2"])
    assert await store.fill(after, [Entry("p1", b"new", ["Product:1"])], 60) == 1
