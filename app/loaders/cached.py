"""The entity cache behind the loaders: one cache round trip per batch, the misses from SQL.

A cached loader batch asks the tagged cache (app.platform.cache) for all its keys at once,
loads only the misses from the database and fills the cache with them, each entry tagged
with what it was read from (`Product:42`, `Product:list`); the cache refuses a fill whose
tags changed since the batch's read, so a row read before a commit never outlives it.

Values are stored as JSON with the row's column names, and the columns holding datetimes
listed, so rows come back as the same `Row`s with the same value types (no pickle: what
Redis holds is data, never code). Staff loaders (unpublished products visible) neither
read nor fill the cache: the cache holds the public view only.

Every loader also names the tags of what it returned (`tags`), hit or miss: the response
cache tags a response with the tags its loaders read. A loader that cannot name them (the
viewer's own data) makes its request's response uncacheable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import Row

from app.db.compat import make_rows, row_metadata
from app.loaders.paging import Page
from app.platform.cache import CacheStats, Entry, TaggedCache

logger = structlog.get_logger("shopgraph.cache")

CODEC_VERSION = "1"  # part of every entity key: a new value format never reads an old one


@dataclass(eq=False)
class ReadTags:
    """The tags of everything one request's loaders returned (for the response cache)."""

    tags: set[str] = field(default_factory=set)
    untaggable: bool = False  # some loader read data it cannot tag (the viewer's own)


@dataclass(frozen=True, eq=False)
class EntityCache:
    """What a request's loaders need to read through the shared cache."""

    cache: TaggedCache
    ttl_seconds: int
    stats: CacheStats


def cache_key(loader: str, key: Hashable) -> str:
    """The entity cache key of one loader key (hashed unless it is a plain id or slug)."""
    if isinstance(key, int | str) and len(str(key)) <= 200:
        return f"{CODEC_VERSION}:{loader}:{key}"
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()
    return f"{CODEC_VERSION}:{loader}:#{digest}"


def _rows_payload(rows: Sequence[Row[Any]]) -> dict[str, Any]:
    if not rows:
        return {"f": [], "d": [], "r": []}
    first = rows[0]
    return {
        "f": list(first._fields),
        "d": [index for index, value in enumerate(first) if isinstance(value, datetime)],
        "r": [tuple(row) for row in rows],
    }


def _rows(payload: dict[str, Any]) -> list[Row[Any]]:
    fields: list[str] = payload["f"]
    records: list[list[Any]] = payload["r"]
    for index in payload["d"]:
        for record in records:
            if record[index] is not None:
                record[index] = datetime.fromisoformat(record[index])
    metadata = row_metadata(fields, [() for _ in fields])
    return make_rows(metadata, None, records)


def encode_value(value: Any) -> bytes:
    """A loader value (a row or None, a list of rows, a page of rows, an int) as bytes."""
    if value is None:
        return b"null"
    if isinstance(value, int):
        return orjson.dumps({"i": value})
    if isinstance(value, Row):
        return orjson.dumps({"o": _rows_payload([value])})
    if isinstance(value, Page):
        return orjson.dumps(
            {"p": _rows_payload(value.rows), "n": value.has_next, "b": value.has_previous}
        )
    if isinstance(value, list):
        return orjson.dumps({"l": _rows_payload(value)})
    raise TypeError(f"cannot cache a {type(value).__name__}")


def decode_value(raw: bytes) -> Any:
    """The loader value `encode_value` stored."""
    payload = orjson.loads(raw)
    if payload is None:
        return None
    if "i" in payload:
        return payload["i"]
    if "o" in payload:
        return _rows(payload["o"])[0]
    if "p" in payload:
        return Page(_rows(payload["p"]), payload["n"], payload["b"])
    return _rows(payload["l"])


async def load_through_cache(
    loader: Any, name: str, keys: list[Any], cache: EntityCache
) -> list[Any]:
    """`loader.load_batch(keys)`, with hits from the cache and misses filled into it."""
    cache_keys = [cache_key(name, key) for key in keys]
    snapshot = await cache.cache.read(cache_keys)
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
    "cache_key",
    "decode_value",
    "encode_value",
    "load_through_cache",
]
