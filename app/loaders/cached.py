"""The entity cache behind the loaders: one cache round trip per batch, the misses from SQL.

A cached loader batch asks the tagged cache (app.platform.cache) for all its keys at once,
in one read with the batches of sibling fields that start beside it, loads only the misses
from the database and fills the cache with them, each entry tagged with what it was read
from (`Product:42`, `Product:list`); the cache refuses a fill whose tags changed since the
batch's read, so a row read before a commit never outlives it.

Values are stored as compact JSON (app/loaders/codec.py) that comes back as the same `Row`s
with the same value types, the row metadata built once per row shape. Staff loaders
(unpublished products visible) neither read nor fill the cache: the cache holds the public
view only.

Every loader also names the tags of what it returned (`tags`), hit or miss: the response
cache tags a response with the tags its loaders read. A loader that cannot name them (the
viewer's own data) makes its request's response uncacheable.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import structlog

from app.loaders.codec import CODEC_VERSION, decode_value, encode_value
from app.platform.cache import CacheStats, Entry, Snapshot, TaggedCache

logger = structlog.get_logger("shopgraph.cache")


@dataclass(eq=False)
class ReadTags:
    """The tags of everything one request's loaders returned (for the response cache)."""

    tags: set[str] = field(default_factory=set)
    untaggable: bool = False  # some loader read data it cannot tag (the viewer's own)


class ReadsOfOneTurn:
    """The cache reads loader batches start in one turn of the event loop, as one store read.

    Sibling fields resolve concurrently, so a listing's category, variant and image batches
    start together: one read (one round trip) answers all three. Each batch gets the one
    generation and sequence, read before any of them reads the database, which is all the
    fill check needs (app/platform/cache.py).
    """

    def __init__(self, cache: TaggedCache) -> None:
        self._cache = cache
        self._keys: list[str] = []
        self._next: asyncio.Task[Snapshot | None] | None = None

    async def read(self, keys: list[str]) -> Snapshot | None:
        """The values of `keys` (None where absent); None when the store is unavailable."""
        read = self._next
        if read is None:
            # A task starts on the loop's next turn: the batches starting in this one join it.
            self._keys = []
            read = self._next = asyncio.ensure_future(self._read_together())
        start = len(self._keys)
        self._keys.extend(keys)
        # Shielded: one batch cancelled (its field failed) must not cancel its siblings' read.
        found = await asyncio.shield(read)
        if found is None:
            return None
        return found._replace(values=found.values[start : start + len(keys)])

    async def _read_together(self) -> Snapshot | None:
        keys, self._next = self._keys, None  # batches starting from now on read next time
        return await self._cache.read(keys)


@dataclass(frozen=True, eq=False)
class EntityCache:
    """What a request's loaders need to read through the shared cache."""

    cache: TaggedCache
    ttl_seconds: int
    stats: CacheStats
    reads: ReadsOfOneTurn = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", ReadsOfOneTurn(self.cache))


def cache_key(loader: str, key: Hashable) -> str:
    """The entity cache key of one loader key (hashed unless it is a plain id or slug)."""
    if isinstance(key, int | str) and len(str(key)) <= 200:
        return f"{CODEC_VERSION}:{loader}:{key}"
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()
    return f"{CODEC_VERSION}:{loader}:#{digest}"


async def load_through_cache(
    loader: Any, name: str, keys: list[Any], cache: EntityCache
) -> list[Any]:
    """`loader.load_batch(keys)`, with hits from the cache and misses filled into it."""
    cache_keys = [cache_key(name, key) for key in keys]
    snapshot = await cache.reads.read(cache_keys)
    if snapshot is None:  # the store is unavailable: the database answers
        cache.stats.entity_misses += len(keys)
        values: list[Any] = await loader.load_batch(keys)
        return values
    results: list[Any] = [None] * len(keys)
    missing: list[int] = []
    for index, raw in enumerate(snapshot.values):
        if raw is None:
            missing.append(index)
            continue
        try:
            results[index] = decode_value(raw)
        except (ValueError, KeyError, TypeError, IndexError):
            missing.append(index)  # unreadable (another version's format): read it again
    cache.stats.entity_hits += len(keys) - len(missing)
    cache.stats.entity_misses += len(missing)
    if not missing:
        return results
    loaded = await loader.load_batch([keys[index] for index in missing])
    entries: list[Entry] = []
    for index, value in zip(missing, loaded, strict=True):
        results[index] = value
        tags = loader.tags(keys[index], value)
        if not tags:  # an entry nothing would invalidate is never stored
            continue
        try:
            encoded = encode_value(value)
        except TypeError as error:
            logger.warning("loader value not cacheable", loader=name, error=str(error))
            continue
        entries.append(Entry(cache_keys[index], encoded, tags))
    await cache.cache.fill(snapshot, entries, cache.ttl_seconds)
    return results


__all__ = [
    "EntityCache",
    "ReadTags",
    "ReadsOfOneTurn",
    "cache_key",
    "decode_value",
    "encode_value",
    "load_through_cache",
]
