"""One process's fan-out of committed changes to the listeners that want them.

Subscriptions (and anything else that reacts to one entity) listen here, never on the
bus itself: the hub holds ONE bus subscription per process (one Redis pub/sub connection
in production), opened when the first listener arrives and closed after the last one
leaves, and hands each batch of changes to the listeners whose tags (`Order:42`) or
entity types (`ProductVariant`) it touches.

Delivery is at most once, like the bus: a listener whose queue is full loses the batch
(logged), and while the bus is unreachable the hub retries with backoff; changes made
in the meantime are not replayed. A listener re-reads its entity on every batch, so a
later change brings it up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import structlog

from app.platform.events import Change, ChangeBus

logger = structlog.get_logger("shopgraph.changes")

Batch = Sequence[Change]


@dataclass(eq=False, slots=True)
class _Listener:
    tags: frozenset[str]
    entities: frozenset[str]
    queue: asyncio.Queue[Batch] = field(default_factory=lambda: asyncio.Queue(100))

    def wants(self, batch: Batch) -> bool:
        return any(change.entity in self.entities or change.tag in self.tags for change in batch)


class ChangeHub:
    """Listeners of this process, fed from one subscription to the change bus."""

    def __init__(
        self,
        bus: ChangeBus,
        *,
        retry_seconds: float = 0.2,
        max_retry_seconds: float = 5.0,
        subscribe_wait_seconds: float = 2.0,
    ) -> None:
        self._bus = bus
        self._listeners: set[_Listener] = set()
        self._pump: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._subscribe_wait_seconds = subscribe_wait_seconds

    @property
    def listener_count(self) -> int:
        """How many listeners are open (tests and metrics)."""
        return len(self._listeners)

    @contextlib.asynccontextmanager
    async def listen(
        self, *, tags: Iterable[str] = (), entities: Iterable[str] = ()
    ) -> AsyncIterator[asyncio.Queue[Batch]]:
        """A queue of the batches touching any of `tags` or `entities`, while open.

        When the bus is up, the hub is subscribed when this returns: a change committed
        after it is delivered.
        """
        listener = _Listener(frozenset(tags), frozenset(entities))
        self._listeners.add(listener)
        if self._pump is None or self._pump.done():
            self._subscribed.clear()
            self._pump = asyncio.create_task(self._run(), name="change-hub")
        try:
            # With the bus down, a listener still starts (it hears changes once it is back).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), self._subscribe_wait_seconds)
            yield listener.queue
        finally:
            self._listeners.discard(listener)
            if not self._listeners and self._pump is not None:
                self._pump.cancel()
                self._pump = None

    async def _run(self) -> None:
        """Read the bus until no listener is left, resubscribing after a failure."""
        delay = self._retry_seconds
        while self._listeners:
            try:
                async with self._bus.subscription() as batches:
                    self._subscribed.set()
                    delay = self._retry_seconds
                    async for batch in batches:
                        self._deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the bus is down: keep the listeners, try again
                self._subscribed.clear()
                logger.warning("change bus subscription failed", error=str(error)[:200])
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry_seconds)

    def _deliver(self, batch: Batch) -> None:
        for listener in tuple(self._listeners):
            if not listener.wants(batch):
                continue
            try:
                listener.queue.put_nowait(batch)
            except asyncio.QueueFull:
                logger.warning("change listener too slow; batch dropped", count=len(batch))


__all__ = ["Batch", "ChangeHub"]
