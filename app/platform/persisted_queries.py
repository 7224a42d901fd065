"""Where automatic persisted queries (APQ) are kept: query text by the SHA-256 of its text.

Anyone may register a document, so every store is bounded: the memory store (the
embedded mode) by entries and bytes, least recently used first out; the Redis store
(production, shared by every process) by a TTL on each key, and neither keeps a
document longer than the query-bytes limit (the caller does not offer one). A store
that fails is a cache that misses: a Redis error is logged once (one warning per
outage), the document is treated as not found (the client sends it again) or not
stored, and Redis is left alone for a short pause instead of making every request
wait for it.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.settings import Settings

logger = structlog.get_logger("shopgraph.persisted_queries")

# Versioned: a change of what is stored under a key gets new keys, not misread old ones.
APQ_KEY_PREFIX = "shopgraph:apq:v1:"


def sha256_hex(text: str) -> str:
    """The lower-case hex SHA-256 of `text` encoded as UTF-8 (the APQ and documentId hash)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def apq_key(sha256_hash: str) -> str:
    """The Redis key of one persisted query."""
    return APQ_KEY_PREFIX + sha256_hash


class PersistedQueryStore(Protocol):
    """Query text by its hash; a miss is None, never an error."""

    async def get(self, sha256_hash: str) -> str | None:
        """The query registered under `sha256_hash`, or None."""
        ...

    async def put(self, sha256_hash: str, query: str) -> None:
        """Keep `query` under `sha256_hash` (the caller has checked that it is its hash)."""
        ...


class MemoryPersistedQueryStore:
    """Process memory, least recently used out first, bounded in entries and UTF-8 bytes."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, sha256_hash: str) -> str | None:
        """The query registered under `sha256_hash`, or None."""
        found = self._entries.get(sha256_hash)
        if found is None:
            return None
        self._entries.move_to_end(sha256_hash)
        return found[0]

    async def put(self, sha256_hash: str, query: str) -> None:
        """Keep `query`, evicting the least recently used entries past either bound."""
        size = len(query.encode("utf-8", "surrogatepass"))
        if size > self.max_bytes or self.max_entries <= 0:
            return
        entries = self._entries
        previous = entries.pop(sha256_hash, None)
        if previous is not None:
            self.bytes -= previous[1]
        entries[sha256_hash] = (query, size)
        self.bytes += size
        while len(entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, evicted) = entries.popitem(last=False)
            self.bytes -= evicted


class RedisPersistedQueryStore:
    """Redis, shared by every server process; each key expires `ttl_seconds` after it is set."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, pause_seconds: float = 0.5) -> None:
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self._pause = pause_seconds
        self._down_until = 0.0
        self._failing = False

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, error: Exception, doing: str) -> None:
        if not self._failing:  # one warning per outage, not one per request
            logger.warning(
                "persisted query store unreachable; treated as a miss",
                doing=doing,
                error_type=type(error).__name__,
                error=str(error),
                retry_in_seconds=self._pause,
            )
        self._failing = True
        self._down_until = time.monotonic() + self._pause

    def _recovered(self) -> None:
        if self._failing:
            logger.info("persisted query store reachable again")
            self._failing = False

    async def get(self, sha256_hash: str) -> str | None:
        """The query registered under `sha256_hash`, or None (also while Redis fails)."""
        if not self._usable():
            return None
        try:
            value = await self._redis.get(apq_key(sha256_hash))
        except (RedisError, OSError) as error:
            self._failed(error, "get")
            return None
        self._recovered()
        if value is None:
            return None
        return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else str(value)

    async def put(self, sha256_hash: str, query: str) -> None:
        """Keep `query` for `ttl_seconds` (nothing is kept while Redis fails)."""
        if not self._usable():
            return
        try:
            await self._redis.set(
                apq_key(sha256_hash), query.encode("utf-8", "surrogatepass"), ex=self.ttl_seconds
            )
        except (RedisError, OSError) as error:
            self._failed(error, "set")
            return
        self._recovered()


def build_persisted_query_store(settings: Settings, redis: Redis | None) -> PersistedQueryStore:
    """Redis when it is configured (shared by the fleet), process memory otherwise."""
    if redis is None:
        return MemoryPersistedQueryStore(
            max_entries=settings.apq_max_entries, max_bytes=settings.apq_max_bytes
        )
    return RedisPersistedQueryStore(
        redis,
        ttl_seconds=settings.apq_ttl_seconds,
        pause_seconds=settings.redis_failover_pause_seconds,
    )


__all__ = [
    "APQ_KEY_PREFIX",
    "MemoryPersistedQueryStore",
    "PersistedQueryStore",
    "RedisPersistedQueryStore",
    "apq_key",
    "build_persisted_query_store",
    "sha256_hex",
]
