"""A rate-limit take and a tagged-cache read together: one Redis round trip for a cache hit.

A request that the response cache may answer needs two things from the shared store before
it runs: its points taken from the caller's bucket(s), and the cached response, if any. A
cached response also decides the price: the cache stores the cost the operation really had
in front of its value (`"<points> ..."`, a *priced entry*), and a hit is charged that, not
the estimate (so caching changes no caller's budget, and a hit needs no refund). With Redis
both are one script: read the entry under the cache's generation, price the request, take
the points from every bucket named (all or none), return what was read.

`SequentialChargedReader` does the same with two calls (read, then take) on any
`TaggedCache` and `RateLimiter`: in process memory (the embedded mode) there is no round
trip to save, and with Redis it is the path taken while the cache is degraded (the cache's
own wrapper then heals it: a new generation after lost invalidations) or after the script
failed, so an outage behaves exactly as it does for the two stores alone.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple, Protocol

import structlog
from redis.exceptions import RedisError

from app.platform.cache import GENERATION_LUA, FailoverTaggedCache, Snapshot, TaggedCache
from app.platform.ratelimit import (
    BUCKET_LUA,
    BucketState,
    Budget,
    RateLimiter,
    pool_exhausted,
    retry_after,
)
from app.platform.redis_pipe import RedisPipe

logger = structlog.get_logger("shopgraph.cache")

_PRICE = re.compile(rb"(\d+) ")


class ChargedRead(NamedTuple):
    """What `read` did: the bucket after the take, the cache's answer, the points charged.

    `operation_points` is what the operation was charged: the price stored with a hit, else
    the requested cost. `snapshot` is None when the cache could not be read (a miss). When
    `due + operation_points` did not fit (`bucket.allowed` is False), `due` alone was taken
    if it fitted (`due_taken`): no request is free, even one refused for its cost.
    """

    bucket: BucketState
    snapshot: Snapshot | None
    operation_points: int
    due_taken: bool


class ChargedReader(Protocol):
    """Reads one priced entry and takes `due` plus its price (or `requested`) from the budget."""

    async def read(self, budget: Budget, key: str, *, due: int, requested: int) -> ChargedRead:
        """Read `key`; take `due + price` when it is there, else `due + requested`."""
        ...


def price_of(value: bytes | None) -> int | None:
    """The points a priced entry names in front of its value (None: absent or not priced)."""
    if value is None:
        return None
    found = _PRICE.match(value)
    return int(found.group(1)) if found else None


class SequentialChargedReader:
    """Read, then take: two calls on the stores as they are (memory, or Redis degraded)."""

    def __init__(self, limiter: RateLimiter, cache: TaggedCache) -> None:
        self.limiter = limiter
        self.cache = cache

    async def read(self, budget: Budget, key: str, *, due: int, requested: int) -> ChargedRead:
        """Read `key`; take `due + price` when it is there, else `due + requested`."""
        snapshot = await self.cache.read([key])
        price = price_of(snapshot.values[0]) if snapshot is not None else None
        if snapshot is not None and price is None and snapshot.values[0] is not None:
            snapshot = snapshot._replace(values=[None])  # not priced: not a servable entry
        operation = requested if price is None else price
        bucket, due_taken = await take_with_due(self.limiter, budget, due, operation)
        return ChargedRead(bucket, snapshot, operation, due_taken)


async def take_with_due(
    limiter: RateLimiter, budget: Budget, due: int, operation: int
) -> tuple[BucketState, bool]:
    """Take `due + operation`; when that does not fit, `due` alone (whether it was taken)."""
    capacity, rate = budget.capacity, budget.restore_rate
    bucket = await limiter.take(budget.key, due + operation, capacity=capacity, restore_rate=rate)
    if bucket.allowed or not due:
        return bucket, bucket.allowed
    charged = await limiter.take(budget.key, due, capacity=capacity, restore_rate=rate)
    if not charged.allowed:
        return bucket, False
    wait = retry_after(operation, charged.available, capacity, rate)
    return charged._replace(allowed=False, retry_after=wait), True


# KEYS: generation, sequence, then the buckets (one or more, taken all or none).
# ARGV: entry prefix, entry key, due points, requested points, capacity, restore rate.
# Returns {generation, sequence, allowed (1/0), available in the emptiest bucket,
# operation points, due taken (1/0), value or nil}: when due + operation points do not
# fit every bucket, due alone is taken if it fits every one. The buckets are the rate
# limiter's hashes, read and written by its BUCKET_LUA functions, so both scripts may
# take from the same bucket.
_CHARGED_READ = (
    GENERATION_LUA
    + BUCKET_LUA
    + """
local sequence = redis.call('GET', KEYS[2]) or '0'
local value = redis.call('GET', ARGV[1] .. gen .. ':' .. ARGV[2])
local operation = tonumber(ARGV[4])
if value then
  local price = string.match(value, '^(%d+) ')
  if price then operation = tonumber(price) else value = false end
end
local due = tonumber(ARGV[3])
local points = due + operation
local capacity = tonumber(ARGV[5])
local rate = tonumber(ARGV[6])
local now = server_now()
local levels = {}
local allowed = 1
local admitted = 1
for i = 3, #KEYS do
  local available = bucket_level(KEYS[i], capacity, rate, now)
  if points > available then allowed = 0 end
  if due > available then admitted = 0 end
  levels[i] = available
end
local taken = 0
if allowed == 1 then taken = points elseif admitted == 1 then taken = due end
local emptiest = capacity
for i = 3, #KEYS do
  local available = levels[i] - taken
  store_level(KEYS[i], available, capacity, rate, now)
  if available < emptiest then emptiest = available end
end
if allowed == 0 then value = false end
return {gen, sequence, allowed, tostring(emptiest), operation, admitted, value}
"""
)


class RedisChargedReader:
    """The one-script read and take, for a Redis-backed cache and rate limiter.

    `bucket_prefix` is the rate limiter's key prefix; a budget key holding `&` names several
    buckets (app.platform.ratelimit.JointRateLimiter), taken here all or none. While the
    cache is degraded, and for `pause_seconds` after the script failed, `fallback` answers.
    """

    def __init__(
        self,
        pipe: RedisPipe,
        cache: FailoverTaggedCache,
        *,
        bucket_prefix: str,
        fallback: ChargedReader,
        pause_seconds: float = 0.5,
    ) -> None:
        self._cache = cache
        self._bucket_prefix = bucket_prefix
        self._fallback = fallback
        self._pause = pause_seconds
        self._down_until = 0.0
        store = cache.primary
        self._keys = [store.generation_key, store.sequence_key]
        self._entry_prefix = store.entry_prefix
        self._script = pipe.register_script(_CHARGED_READ)

    async def read(self, budget: Budget, key: str, *, due: int, requested: int) -> ChargedRead:
        """Read `key`; take `due + price` when it is there, else `due + requested`."""
        if self._cache.degraded or time.monotonic() < self._down_until:
            return await self._fallback.read(budget, key, due=due, requested=requested)
        buckets = [self._bucket_prefix + part for part in budget.key.split("&")]
        try:
            reply = await self._script(
                keys=[*self._keys, *buckets],
                args=[
                    self._entry_prefix,
                    key,
                    due,
                    requested,
                    budget.capacity,
                    budget.restore_rate,
                ],
            )
        except (RedisError, OSError) as error:
            if pool_exhausted(error):  # busy, not down: refused, as the rate limiter does
                logger.info("rate limit store busy; request refused", error=str(error))
                busy = BucketState(False, 0.0, budget.capacity, budget.restore_rate, 1.0)
                return ChargedRead(busy, None, requested, False)
            # The stores' own wrappers log the outage and fail over: let them, for a while.
            self._down_until = time.monotonic() + self._pause
            logger.info("charged read failed; using the stores one by one", error=str(error))
            return await self._fallback.read(budget, key, due=due, requested=requested)
        generation, sequence, allowed, available, operation, admitted = reply[:6]
        value = reply[6] if len(reply) > 6 else None
        level = float(available)
        # Refused: the wait is for what is still to be taken (the operation, once due was).
        wanted = int(operation) + (0 if admitted else due)
        capacity, rate = budget.capacity, budget.restore_rate
        wait = 0.0 if allowed else retry_after(wanted, level, capacity, rate)
        bucket = BucketState(bool(allowed), level, capacity, rate, wait)
        snapshot = Snapshot(generation.decode(), int(sequence), [value or None])
        return ChargedRead(bucket, snapshot, int(operation), bool(admitted))


__all__ = [
    "ChargedRead",
    "ChargedReader",
    "RedisChargedReader",
    "SequentialChargedReader",
    "price_of",
    "take_with_due",
]
