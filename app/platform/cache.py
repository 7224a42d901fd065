"""A tagged cache that is never stale after a commit: in process memory, or in Redis.

Each entry is bytes under a key, with the tags of what it was computed from
(`Product:42`, `Product:list`). The scheme, the same in both backends:

- a global *sequence* counts invalidations. `read` returns the values together with the
  sequence number, in one round trip, before the caller reads the database;
- `invalidate(tags)` (after a commit) takes the next sequence number, stamps every tag
  with it (a version that outlives the longest read) and deletes every entry indexed
  under the tags, atomically;
- `fill(snapshot, entries)` stores an entry only if none of its tags was stamped after the
  snapshot's sequence number, atomically with indexing it under its tags.

So a value read from the database before a commit (the read-old/write-late race) is either
stored before the invalidation, which then deletes it, or arrives after it and is refused:
its tags carry a newer stamp than the sequence the reader saw before reading. Tags may be
found in the value itself (a variant's product), since the check is against the sequence.

Keys live under a *generation*. When an invalidation could not be delivered (Redis
unreachable) the process bumps the generation as soon as Redis answers again, which
orphans every entry at once; a Redis that lost its data starts a new generation itself.
While Redis is unreachable the cache is bypassed: reads go to the database.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.platform.ratelimit import pool_exhausted

logger = structlog.get_logger("shopgraph.cache")

# A tag's stamp must outlive the longest read that could have started before it (operations
# are stopped after at most 600 s: settings.operation_timeout_seconds).
TAG_STAMP_SECONDS = 3600


class Snapshot(NamedTuple):
    """What `read` found: the generation and sequence it read under, and one value per key."""

    generation: str
    sequence: int
    values: list[bytes | None]


class Entry(NamedTuple):
    """A value to store, with the tags that drop it."""

    key: str
    value: bytes
    tags: Sequence[str]


class TaggedCache(Protocol):
    """A store of tagged entries (see the module docstring for the guarantees)."""

    async def read(self, keys: Sequence[str]) -> Snapshot | None:
        """The values of `keys` (None where absent); None when the store is unavailable."""
        ...

    async def fill(self, snapshot: Snapshot, entries: Sequence[Entry], ttl_seconds: int) -> int:
        """Store the entries whose tags did not change since `snapshot`; how many were stored."""
        ...

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Drop every entry tagged with one of `tags`, and refuse fills that predate this."""
        ...


@dataclass(slots=True)
class CacheStats:
    """Hits and misses of one request, per layer (extensions.debug and the DEBUG log line)."""

    entity_hits: int = 0
    entity_misses: int = 0
    response: str | None = None  # "hit", "miss", or None when the response cache was not used

    def as_debug(self) -> dict[str, object]:
        """The `extensions.debug.cache` object."""
        return {
            "entity": {"hits": self.entity_hits, "misses": self.entity_misses},
            "response": self.response,
        }


@dataclass
class MemoryTaggedCache:
    """One process (the embedded mode): dictionaries, atomic because no step awaits."""

    max_entries: int = 50_000
    _entries: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    _index: dict[str, set[str]] = field(default_factory=dict)
    _stamps: dict[str, int] = field(default_factory=dict)
    _sequence: int = 0

    async def read(self, keys: Sequence[str]) -> Snapshot | None:
        """The values of `keys` (expired ones are absent)."""
        now = time.monotonic()
        values: list[bytes | None] = []
        for key in keys:
            found = self._entries.get(key)
            if found is not None and found[1] <= now:
                del self._entries[key]
                found = None
            values.append(None if found is None else found[0])
        return Snapshot("0", self._sequence, values)

    async def fill(self, snapshot: Snapshot, entries: Sequence[Entry], ttl_seconds: int) -> int:
        """Store the entries none of whose tags was stamped after the snapshot."""
        stored = 0
        expires = time.monotonic() + ttl_seconds
        for entry in entries:
            if any(self._stamps.get(tag, -1) > snapshot.sequence for tag in entry.tags):
                continue
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))  # the oldest; its index ids go stale
            self._entries[entry.key] = (entry.value, expires)
            for tag in entry.tags:
                self._index.setdefault(tag, set()).add(entry.key)
            stored += 1
        return stored

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Stamp the tags with the next sequence number and drop their entries."""
        self._sequence += 1
        for tag in tags:
            self._stamps[tag] = self._sequence
            for key in self._index.pop(tag, ()):
                self._entries.pop(key, None)


# Sets `gen` from the generation key KEYS[1] (also used by app/platform/charged_read.py).
# A missing generation (a new or emptied Redis) starts a new one from the server clock, so
# no entry filled against the data Redis lost can be read back.
GENERATION_LUA = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  local now = redis.call('TIME')
  gen = now[1] .. string.format('%06d', tonumber(now[2]))
  redis.call('SET', KEYS[1], gen)
end
"""
# KEYS: generation, sequence. ARGV[1]: entry key prefix; ARGV[2..]: entry keys (no prefix).
# Returns {generation, sequence, value or nil per key}.
_READ = (
    GENERATION_LUA
    + """
local out = {gen, redis.call('GET', KEYS[2]) or '0'}
if #ARGV > 1 then
  local keys = {}
  local prefix = ARGV[1] .. gen .. ':'
  for i = 2, #ARGV do keys[i - 1] = prefix .. ARGV[i] end
  local values = redis.call('MGET', unpack(keys))
  for i = 1, #values do out[i + 2] = values[i] end
end
return out
"""
)

# KEYS: generation. ARGV: key prefix, stamp prefix, index prefix, generation, sequence, ttl,
# then per entry: key, value, tag count, tags. Returns how many entries were stored.
_FILL = """
if redis.call('GET', KEYS[1]) ~= ARGV[4] then return 0 end
local sequence = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local prefix = ARGV[1] .. ARGV[4] .. ':'
local stored = 0
local i = 7
while i <= #ARGV do
  local count = tonumber(ARGV[i + 2])
  local fresh = true
  for t = 1, count do
    local stamp = redis.call('GET', ARGV[2] .. ARGV[i + 2 + t])
    if stamp and tonumber(stamp) > sequence then fresh = false end
  end
  if fresh then
    local key = prefix .. ARGV[i]
    redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
    for t = 1, count do
      local index = ARGV[3] .. ARGV[i + 2 + t]
      redis.call('SADD', index, key)
      if redis.call('TTL', index) < ttl then redis.call('EXPIRE', index, ttl) end
    end
    stored = stored + 1
  end
  i = i + 3 + count
end
return stored
"""

# KEYS: sequence. ARGV: stamp prefix, index prefix, stamp ttl, tags. Returns the sequence.
_INVALIDATE = """
local sequence = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[3])
for i = 4, #ARGV do
  redis.call('SET', ARGV[1] .. ARGV[i], sequence, 'EX', ttl)
  local index = ARGV[2] .. ARGV[i]
  local members = redis.call('SMEMBERS', index)
  for j = 1, #members, 1000 do
    redis.call('DEL', unpack(members, j, math.min(j + 999, #members)))
  end
  redis.call('DEL', index)
end
return sequence
"""


class RedisTaggedCache:
    """Shared by every server process; each call is one atomic script (one round trip).

    The scripts build key names themselves, so this needs one Redis (not a cluster).
    Stamps and indexes expire, entries expire with their TTL; run Redis with enough
    memory (or `noeviction`): an evicted index set leaves its entries until their TTL.
    """

    def __init__(self, redis: Redis, *, prefix: str = "shopgraph:cache:v1:") -> None:
        self._redis = redis
        # Public for scripts that read entries together with other work (charged_read.py).
        self.generation_key = self._generation_key = prefix + "generation"
        self.sequence_key = self._sequence_key = prefix + "sequence"
        self.entry_prefix = self._entry_prefix = prefix + "e:"
        self._stamp_prefix = prefix + "stamp:"
        self._index_prefix = prefix + "index:"
        self._read = redis.register_script(_READ)
        self._fill = redis.register_script(_FILL)
        self._invalidate = redis.register_script(_INVALIDATE)

    async def read(self, keys: Sequence[str]) -> Snapshot | None:
        """The values of `keys` under the current generation, and the sequence."""
        reply = await self._read(
            keys=[self._generation_key, self._sequence_key], args=[self._entry_prefix, *keys]
        )
        values = list(reply[2:])
        values.extend([None] * (len(keys) - len(values)))  # trailing nils are dropped by Lua
        return Snapshot(reply[0].decode(), int(reply[1]), values)

    async def fill(self, snapshot: Snapshot, entries: Sequence[Entry], ttl_seconds: int) -> int:
        """Store the entries none of whose tags was stamped after the snapshot."""
        if not entries or ttl_seconds <= 0:
            return 0
        args: list[str | bytes | int] = [
            self._entry_prefix,
            self._stamp_prefix,
            self._index_prefix,
            snapshot.generation,
            snapshot.sequence,
            ttl_seconds,
        ]
        for entry in entries:
            args += [entry.key, entry.value, len(entry.tags), *entry.tags]
        return int(await self._fill(keys=[self._generation_key], args=args))

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Stamp the tags and delete their entries."""
        if tags:
            await self._invalidate(
                keys=[self._sequence_key],
                args=[self._stamp_prefix, self._index_prefix, TAG_STAMP_SECONDS, *tags],
            )

    async def ping(self) -> None:
        """Raise when Redis does not answer."""
        await self._redis.ping()

    async def new_generation(self) -> None:
        """Orphan every entry (after invalidations that could not be delivered)."""
        await self._redis.incr(self._generation_key)


class FailoverTaggedCache:
    """`RedisTaggedCache` that degrades to no cache while Redis fails, and heals itself.

    After a failure Redis is left alone for `pause_seconds` (reads miss, fills are
    skipped). An invalidation that could not be delivered may leave stale entries in
    Redis, so before this process uses the cache again it starts a new generation.
    """

    def __init__(self, primary: RedisTaggedCache, *, pause_seconds: float = 0.5) -> None:
        self.primary = self._primary = primary
        self._pause = pause_seconds
        self._down_until = 0.0
        self._lost_invalidation = False

    @property
    def degraded(self) -> bool:
        """Whether the cache is being bypassed now."""
        return time.monotonic() < self._down_until or self._lost_invalidation

    async def _usable(self) -> bool:
        if time.monotonic() < self._down_until:
            return False
        if self._lost_invalidation:
            try:
                await self._primary.new_generation()
            except (RedisError, OSError) as error:
                self._failed(error)
                return False
            logger.info("cache store back; started a new generation after lost invalidations")
            self._lost_invalidation = False
        return True

    def _failed(self, error: BaseException) -> None:
        if pool_exhausted(error):
            return  # busy, not down: this call is skipped, the store stays in use
        if time.monotonic() >= self._down_until:
            logger.warning(
                "cache store unreachable; reading from the database",
                error_type=type(error).__name__,
                error=str(error),
                retry_in_seconds=self._pause,
            )
        self._down_until = time.monotonic() + self._pause

    async def check(self) -> None:
        """For readiness: raise while the cache is bypassed or Redis does not answer."""
        if not await self._usable():
            raise ConnectionError("cache bypassed since a Redis failure")
        await self._primary.ping()

    async def read(self, keys: Sequence[str]) -> Snapshot | None:
        """The values, or None while the store is unavailable."""
        if not await self._usable():
            return None
        try:
            return await self._primary.read(keys)
        except (RedisError, OSError) as error:
            self._failed(error)
            return None

    async def fill(self, snapshot: Snapshot, entries: Sequence[Entry], ttl_seconds: int) -> int:
        """Store what may be stored; nothing while the store is unavailable."""
        if not await self._usable():
            return 0
        try:
            return await self._primary.fill(snapshot, entries, ttl_seconds)
        except (RedisError, OSError) as error:
            self._failed(error)
            return 0

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Invalidate now, or remember to start a new generation once the store answers."""
        if await self._usable():
            try:
                await self._primary.invalidate(tags)
                return
            except (RedisError, OSError) as error:
                self._failed(error)
        self._lost_invalidation = True


__all__ = [
    "CacheStats",
    "Entry",
    "FailoverTaggedCache",
    "MemoryTaggedCache",
    "RedisTaggedCache",
    "Snapshot",
    "TaggedCache",
]
