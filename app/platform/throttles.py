"""Throttles in front of credential checks: points reserved before the check, given back on success.

Every attempt takes one point from each of its buckets before the (Argon2) check runs,
so concurrent attempts cannot slip past a limit and a flood is refused before any
hashing; a successful attempt gives its points back, so only failures count.

An optional `ceiling` bucket counts the failures of one account from everywhere. Once
it is empty the attempt is not refused outright: it must also take the single point of
a `slow_lane` bucket that refills slowly. The ceiling therefore slows guessing spread
over many IPs without locking the owner out (whose own (account, IP) bucket is full).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from app.platform.errors import Throttled
from app.platform.ratelimit import BucketState, RateLimiter


class Bucket(NamedTuple):
    """One leaky bucket of attempts: its key, size and refill per second."""

    key: str
    capacity: int
    restore_rate: float


class FailureThrottle:
    """Reserve one point from each bucket before a credential check; `release` on success."""

    def __init__(
        self,
        limiter: RateLimiter,
        buckets: Sequence[Bucket],
        *,
        message: str,
        ceiling: Bucket | None = None,
        slow_lane: Bucket | None = None,
    ) -> None:
        self.limiter = limiter
        self.buckets = list(buckets)
        self.message = message  # formatted with `seconds`
        self.ceiling = ceiling
        self.slow_lane = slow_lane
        self._taken: list[Bucket] = []

    async def reserve(self) -> None:
        """Take one point from each bucket (and the ceiling or slow lane), or none and raise."""
        for bucket in self.buckets:
            await self._take_or_raise(bucket)
        if self.ceiling is None:
            return
        state = await self._take(self.ceiling)
        if state.allowed:
            self._taken.append(self.ceiling)
        elif self.slow_lane is not None:
            # The slow lane's point is never given back: it paces attempts, not failures.
            lane = await self._take(self.slow_lane)
            if not lane.allowed:
                await self._refuse(lane.retry_after)
        else:
            await self._refuse(state.retry_after)

    async def release(self) -> None:
        """Give the reserved points back (the attempt succeeded)."""
        taken, self._taken = self._taken, []
        for bucket in taken:
            await self.limiter.give_back(
                bucket.key, 1, capacity=bucket.capacity, restore_rate=bucket.restore_rate
            )

    async def _take(self, bucket: Bucket) -> BucketState:
        return await self.limiter.take(
            bucket.key, 1, capacity=bucket.capacity, restore_rate=bucket.restore_rate
        )

    async def _take_or_raise(self, bucket: Bucket) -> None:
        state = await self._take(bucket)
        if not state.allowed:
            await self._refuse(state.retry_after)
        self._taken.append(bucket)

    async def _refuse(self, retry_after: float) -> None:
        await self.release()
        seconds = max(1, math.ceil(retry_after)) if math.isfinite(retry_after) else 3600
        raise Throttled(self.message.format(seconds=seconds), retry_after=seconds)
