"""Leaky-bucket budgets: each caller has `capacity` points that refill at `restore_rate` per second.

A request takes points before it runs (`take`) and may give some back after
(`give_back`). The in-memory limiter serves one process (the embedded mode);
the Redis limiter shares budgets across processes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BucketState:
    """The outcome of taking points: allowed or not, and what is left."""

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
            wait = (cost - available) / restore_rate if cost <= capacity else float("inf")
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
