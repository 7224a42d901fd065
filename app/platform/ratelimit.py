"""Leaky-bucket budgets: each caller has `capacity` points that refill at `restore_rate` per second.

A request takes points before it runs (`take`) and may give some back after
(`give_back`; negative points charge more). The in-memory limiter serves one process
(the embedded mode); the Redis limiter shares budgets across processes with one
atomic script per call, timed by the Redis server's clock so that every process
agrees on how much has been restored.

When Redis cannot be reached, `FailoverRateLimiter` keeps limiting with per-process
buckets (so a fleet of N processes allows up to N budgets) and tries Redis again
after a short pause: a Redis outage neither opens the API to unlimited traffic nor
takes it down. A busy pool is not an outage: requests wait for a pooled connection
(BlockingConnectionPool), and one that still gets none is refused rather than
served from per-process buckets. Dead pooled connections are retried on a fresh
connection at once (redis-py Retry), so a Redis restart costs no failover.

A key holding `&` names several buckets taken together (`JointRateLimiter`): a
signed-in user's request takes from both the user's and the client IP's bucket.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from typing import NamedTuple, Protocol

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.settings import Settings

logger = structlog.get_logger("shopgraph.ratelimit")


class BucketState(NamedTuple):
    """The outcome of taking points: allowed or not, and what is left.

    (A named tuple: made on every request, and several times cheaper than a frozen dataclass.)
    """

    allowed: bool
    available: float
    capacity: int
    restore_rate: float
    retry_after: float  # seconds until the refused cost would fit; 0 when allowed


class RateLimiter(Protocol):
    """A store of leaky buckets keyed by caller."""

    async def take(
        self, key: str, cost: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Take `cost` points if they are available; otherwise take nothing."""
        ...

    async def give_back(
        self, key: str, points: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Return unused points (never above capacity)."""
        ...


class MemoryRateLimiter:
    """Buckets in process memory, for the embedded single-process mode."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_keys = max_keys

    def _level(self, key: str, capacity: int, restore_rate: float, now: float) -> float:
        available, updated = self._buckets.get(key, (float(capacity), now))
        return min(float(capacity), available + (now - updated) * restore_rate)

    def _store(self, key: str, available: float, now: float) -> None:
        self._buckets[key] = (available, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)  # the least recently used bucket

    async def take(
        self, key: str, cost: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Take `cost` points if they are available; otherwise take nothing."""
        now = time.monotonic()
        available = self._level(key, capacity, restore_rate, now)
        if cost > available:
            self._store(key, available, now)
            wait = retry_after(cost, available, capacity, restore_rate)
            return BucketState(False, available, capacity, restore_rate, wait)
        self._store(key, available - cost, now)
        return BucketState(True, available - cost, capacity, restore_rate, 0.0)

    async def give_back(
        self, key: str, points: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Return unused points (never above capacity)."""
        now = time.monotonic()
        available = min(float(capacity), self._level(key, capacity, restore_rate, now) + points)
        self._store(key, available, now)
        return BucketState(True, available, capacity, restore_rate, 0.0)


# A bucket's hash holds its level and the server time it was measured at, and expires
# when the bucket would be full again anyway. Both bucket scripts (this module's and
# app/platform/charged_read.py's) read and write it through these two functions.
BUCKET_LUA = """
local function bucket_level(key, capacity, rate, now)
  local state = redis.call('HMGET', key, 'available', 'updated')
  local available = tonumber(state[1])
  local updated = tonumber(state[2])
  if available == nil or updated == nil then
    return capacity
  end
  return math.min(capacity, available + math.max(0, now - updated) * rate)
end
local function store_level(key, available, capacity, rate, now)
  redis.call('HSET', key, 'available', tostring(available), 'updated', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((capacity - available) / rate * 1000) + 1000)
end
local function server_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
"""

# KEYS[1]: the bucket. ARGV: points, capacity, restore rate, "take" or "give".
# Returns {1 if allowed, available as a string}.
_BUCKET_SCRIPT = (
    BUCKET_LUA
    + """
local points = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local now = server_now()
local available = bucket_level(KEYS[1], capacity, rate, now)
local allowed = 1
if ARGV[4] == 'take' then
  if points > available then
    allowed = 0
  else
    available = available - points
  end
else
  available = math.min(capacity, available + points)
end
store_level(KEYS[1], available, capacity, rate, now)
return {allowed, tostring(available)}
"""
)


def retry_after(cost: float, available: float, capacity: int, restore_rate: float) -> float:
    """Seconds until `cost` points fit in a bucket holding `available` (inf: never)."""
    if cost > capacity:
        return math.inf
    return max(0.0, (cost - available) / restore_rate)


class RedisRateLimiter:
    """Buckets in Redis, shared by every server process; one round trip per call."""

    def __init__(self, redis: Redis, *, key_prefix: str = "shopgraph:rl:v1:") -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._script = redis.register_script(_BUCKET_SCRIPT)

    async def _run(
        self, key: str, points: float, capacity: int, restore_rate: float, mode: str
    ) -> tuple[bool, float]:
        allowed, available = await self._script(
            keys=[self._key_prefix + key], args=[points, capacity, restore_rate, mode]
        )
        return bool(allowed), float(available)

    async def take(
        self, key: str, cost: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Take `cost` points if they are available; otherwise take nothing."""
        allowed, available = await self._run(key, cost, capacity, restore_rate, "take")
        if not allowed:
            wait = retry_after(cost, available, capacity, restore_rate)
            return BucketState(False, available, capacity, restore_rate, wait)
        return BucketState(True, available, capacity, restore_rate, 0.0)

    async def give_back(
        self, key: str, points: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Return unused points (never above capacity)."""
        _, available = await self._run(key, points, capacity, restore_rate, "give")
        return BucketState(True, available, capacity, restore_rate, 0.0)


def pool_exhausted(error: BaseException) -> bool:
    """Whether `error` says every pooled connection was busy (not that Redis is down)."""
    if isinstance(error, MaxConnectionsError):
        return True
    # BlockingConnectionPool: its wait for a free connection timed out.
    return isinstance(error, RedisConnectionError) and isinstance(
        error.__cause__, asyncio.TimeoutError
    )


class FailoverRateLimiter:
    """Uses `primary` (Redis); while it fails, per-process `fallback` buckets for `pause` seconds.

    A pool with no free connection is not a failure of the store: the take is refused
    (the caller retries in a second) and the shared buckets stay authoritative.
    """

    def __init__(
        self, primary: RateLimiter, fallback: RateLimiter, *, pause_seconds: float = 0.5
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._pause = pause_seconds
        self._down_until = 0.0

    def _primary_usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, error: Exception) -> None:
        if self._primary_usable():
            cause = error.__cause__
            logger.warning(
                "rate limit store unreachable; limiting per process",
                error_type=type(error).__name__,
                error=str(error),
                cause=f"{type(cause).__name__}: {cause}" if cause is not None else None,
                retry_in_seconds=self._pause,
            )
        self._down_until = time.monotonic() + self._pause

    async def take(
        self, key: str, cost: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Take from the shared bucket, or from this process's while the store is down."""
        if self._primary_usable():
            try:
                return await self._primary.take(
                    key, cost, capacity=capacity, restore_rate=restore_rate
                )
            except (RedisError, OSError) as error:
                if pool_exhausted(error):
                    logger.info("rate limit store busy; request refused", error=str(error))
                    return BucketState(False, 0.0, capacity, restore_rate, 1.0)
                self._failed(error)
        return await self._fallback.take(key, cost, capacity=capacity, restore_rate=restore_rate)

    async def give_back(
        self, key: str, points: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Give back to the shared bucket, or to this process's while the store is down."""
        if self._primary_usable():
            try:
                return await self._primary.give_back(
                    key, points, capacity=capacity, restore_rate=restore_rate
                )
            except (RedisError, OSError) as error:
                if pool_exhausted(error):
                    # Nothing given back: the caller loses a refund, the budget still holds.
                    return BucketState(True, 0.0, capacity, restore_rate, 0.0)
                self._failed(error)
        return await self._fallback.give_back(
            key, points, capacity=capacity, restore_rate=restore_rate
        )


class JointRateLimiter:
    """Splits a key on `&` and takes from every bucket it names, all or none."""

    def __init__(self, inner: RateLimiter) -> None:
        self._inner = inner

    async def take(
        self, key: str, cost: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Take `cost` from each named bucket; if one refuses, give back the others."""
        if "&" not in key:
            return await self._inner.take(key, cost, capacity=capacity, restore_rate=restore_rate)
        taken: list[str] = []
        tightest: BucketState | None = None
        for part in key.split("&"):
            state = await self._inner.take(part, cost, capacity=capacity, restore_rate=restore_rate)
            if not state.allowed:
                for done in taken:
                    await self._inner.give_back(
                        done, cost, capacity=capacity, restore_rate=restore_rate
                    )
                return state
            taken.append(part)
            if tightest is None or state.available < tightest.available:
                tightest = state
        assert tightest is not None
        return tightest

    async def give_back(
        self, key: str, points: float, *, capacity: int, restore_rate: float
    ) -> BucketState:
        """Give back to each named bucket; the state of the emptiest is returned."""
        states = [
            await self._inner.give_back(part, points, capacity=capacity, restore_rate=restore_rate)
            for part in key.split("&")
        ]
        return min(states, key=lambda state: state.available)


class Caller(Protocol):
    """Who a budget belongs to (app.context.Viewer)."""

    @property
    def user_id(self) -> int | None: ...

    @property
    def partner_id(self) -> int | None: ...

    @property
    def rate_tier(self) -> str | None: ...


class Budget(NamedTuple):
    """A caller's bucket: its key, size and restore rate."""

    key: str
    capacity: int
    restore_rate: float


class Budgets:
    """Picks the bucket of a caller: partner (by tier), else signed-in user, else client IP."""

    def __init__(
        self, *, capacity: int, restore_rate: float, tiers: dict[str, tuple[int, float]]
    ) -> None:
        self.capacity = capacity
        self.restore_rate = restore_rate
        self.tiers = tiers

    @classmethod
    def from_settings(cls, settings: Settings) -> Budgets:
        """Budgets from SHOPGRAPH_RATE_LIMIT_* and SHOPGRAPH_PARTNER_TIERS."""
        return cls(
            capacity=settings.rate_limit_capacity,
            restore_rate=settings.rate_limit_restore_rate,
            tiers=settings.partner_tiers,
        )

    def for_caller(self, caller: Caller, client_ip: str) -> Budget:
        """The budget this caller spends (an unknown partner tier gets the default budget)."""
        if caller.partner_id is not None:
            capacity, restore_rate = self.tiers.get(
                caller.rate_tier or "", (self.capacity, self.restore_rate)
            )
            return Budget(f"partner:{caller.partner_id}", capacity, restore_rate)
        if caller.user_id is not None:
            # Also the IP's bucket: accounts signed in from one IP share that IP's budget.
            key = f"user:{caller.user_id}&ip:{client_ip}"
            return Budget(key, self.capacity, self.restore_rate)
        return Budget(f"ip:{client_ip}", self.capacity, self.restore_rate)


def redis_client(
    url: str, *, pool_size: int = 50, pool_timeout: float = 0.5, health_check_seconds: int = 5
) -> Redis:
    """A Redis client with short timeouts, a bounded pool that waits, and retries on new connections.

    A slow store must not hold requests for long; a busy pool makes callers wait up to
    `pool_timeout`; a dead pooled connection (after a Redis restart) is replaced and the
    command retried at once instead of failing the request.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=pool_timeout,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=health_check_seconds,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


def redis_client_from_settings(settings: Settings) -> Redis | None:
    """The shared Redis client of SHOPGRAPH_REDIS_URL and SHOPGRAPH_REDIS_POOL_*, if any."""
    if not settings.redis_url:
        return None
    return redis_client(
        settings.redis_url,
        pool_size=settings.redis_pool_size,
        pool_timeout=settings.redis_pool_timeout_seconds,
    )


def build_rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    """Redis-backed shared buckets when Redis is configured, process memory otherwise."""
    if redis is None:
        return JointRateLimiter(MemoryRateLimiter())
    return JointRateLimiter(
        FailoverRateLimiter(
            RedisRateLimiter(redis, key_prefix=settings.rate_limit_key_prefix),
            MemoryRateLimiter(),
            pause_seconds=settings.redis_failover_pause_seconds,
        )
    )
