"""The per-request context that resolvers see as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from app.db import Database
from app.loaders import Loaders
from app.loaders.cached import EntityCache
from app.platform.cache import CacheStats
from app.platform.caching import Caching
from app.platform.crypto import DataCipher
from app.platform.ratelimit import RateLimiter
from app.services.auth import ANONYMOUS, Viewer
from app.services.payments.gateway import PaymentGateway
from app.settings import Settings

__all__ = ["ANONYMOUS", "Context", "Viewer"]


@dataclass
class Context:
    """Everything a resolver may use; built once per request (once per WebSocket connection)."""

    db: Database
    settings: Settings
    request_id: str
    rate_limiter: RateLimiter
    # Built once per process: the gateway remembers idempotency keys, the cipher holds keys.
    gateway: PaymentGateway
    cipher: DataCipher
    viewer: Viewer = field(default=ANONYMOUS)
    client_ip: str = "-"
    caching: Caching | None = None
    cache_stats: CacheStats = field(default_factory=CacheStats)

    @cached_property
    def loaders(self) -> Loaders:
        """This request's loaders (made on first use), reading through the entity cache."""
        caching = self.caching
        entity_cache = None
        if caching is not None and caching.cache is not None:
            entity_cache = EntityCache(caching.cache, caching.entity_ttl_seconds, self.cache_stats)
        return Loaders(self.db, include_unpublished=self.viewer.is_staff, entity_cache=entity_cache)

    def renew_loaders(self) -> Loaders:
        """Fresh loaders from now on (a subscription's next event must not see the last one's)."""
        self.__dict__.pop("loaders", None)
        return self.loaders
