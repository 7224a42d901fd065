"""The caches and the change bus of one process, built once from settings (app/main.py).

After a unit of work commits, `after_commit` first invalidates the shared cache itself
(so no later read through any process's cache sees the old value, whatever pub/sub
delivers), then announces the changes on the bus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from app.platform.cache import (
    FailoverTaggedCache,
    MemoryTaggedCache,
    RedisTaggedCache,
    TaggedCache,
)
from app.platform.change_hub import ChangeHub
from app.platform.events import Change, ChangeBus, InProcessChangeBus, RedisChangeBus, tags_of
from app.settings import Settings

logger = structlog.get_logger("shopgraph.cache")


@dataclass(eq=False)
class Caching:
    """The tagged cache (None when caching is off), the change bus and its listeners' hub."""

    cache: TaggedCache | None
    bus: ChangeBus
    entity_ttl_seconds: int
    hub: ChangeHub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = ChangeHub(self.bus)

    async def after_commit(self, changes: Sequence[Change]) -> None:
        """Invalidate what the committed changes touched, then publish them."""
        try:
            if self.cache is not None:
                await self.cache.invalidate(tags_of(changes))
            await self.bus.publish(changes)
        except Exception:  # the write has committed: its answer must not turn into an error
            logger.exception("after-commit work failed", count=len(changes))

    @property
    def redis_check(self) -> Callable[[], Awaitable[None]] | None:
        """Readiness of the shared cache (it also heals it after lost invalidations)."""
        return self.cache.check if isinstance(self.cache, FailoverTaggedCache) else None


def build_caching(settings: Settings, redis: Redis | None) -> Caching:
    """Redis-backed cache and bus when Redis is configured, process memory otherwise."""
    cache: TaggedCache | None
    bus: ChangeBus
    if redis is None:
        cache = MemoryTaggedCache()
        bus = InProcessChangeBus()
    else:
        cache = FailoverTaggedCache(
            RedisTaggedCache(redis, prefix=settings.cache_key_prefix),
            pause_seconds=settings.redis_failover_pause_seconds,
        )
        # Under the cache's prefix: deployments (and test runs) sharing a Redis hear only
        # their own changes, as they read only their own cache entries.
        bus = RedisChangeBus(redis, channel=f"{settings.cache_key_prefix}changes")
    return Caching(
        cache=cache if settings.cache_enabled else None,
        bus=bus,
        entity_ttl_seconds=settings.entity_cache_ttl_seconds,
    )


__all__ = ["Caching", "build_caching"]
