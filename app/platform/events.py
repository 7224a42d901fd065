"""Change events: what a committed write changed, for caches, subscriptions, webhooks and jobs.

A service records `Change`s inside its transaction (app.db.work.UnitOfWork); after the
commit they go out, never on a rollback. Two things consume them:

- cache invalidation, done by the writer itself right after commit against the shared
  store (app.platform.cache), so it never depends on pub/sub delivery;
- a `ChangeBus`, for everything that reacts to changes: in-process in the embedded mode,
  Redis pub/sub (one channel, JSON messages) with several server processes. Pub/sub is
  at-most-once: consumers that must not lose an event (jobs, webhooks) will read them
  from a transactional outbox written by the same unit of work (issue 11).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = structlog.get_logger("shopgraph.events")

CHANGES_CHANNEL = "shopgraph:changes:v1"
LISTING = None  # Change.id of a list-membership change


@dataclass(frozen=True, slots=True)
class Change:
    """One thing a write changed: an entity (`Product`, 42), or a listing (`Product`, None).

    A listing change says that the set, order or filterable values of the listings of
    that entity type changed (a product created, published, renamed, repriced...).
    """

    entity: str
    id: int | None = LISTING

    @classmethod
    def listing(cls, entity: str) -> Change:
        """The listings of `entity` changed."""
        return cls(entity, LISTING)

    @property
    def tag(self) -> str:
        """The cache tag of what changed (`Product:42`, `Product:list`)."""
        return listing_tag(self.entity) if self.id is None else entity_tag(self.entity, self.id)

    def encoded(self) -> list[str | int | None]:
        """A JSON-able form."""
        return [self.entity, self.id]


def entity_tag(entity: str, id: int | str) -> str:
    """The cache tag of one entity."""
    return f"{entity}:{id}"


def listing_tag(entity: str) -> str:
    """The cache tag of every listing of an entity type."""
    return f"{entity}:list"


def tags_of(changes: Iterable[Change]) -> list[str]:
    """The distinct cache tags of some changes, in order."""
    return list(dict.fromkeys(change.tag for change in changes))


Handler = Callable[[Sequence[Change]], Awaitable[None]]


class ChangeBus(Protocol):
    """Where committed changes are announced."""

    async def publish(self, changes: Sequence[Change]) -> None:
        """Announce changes that were committed (best effort: failures are logged)."""
        ...

    def subscription(self) -> AbstractAsyncContextManager[AsyncIterator[Sequence[Change]]]:
        """Every batch of changes published (by any process sharing the bus) while open.

        Subscribed on entry: a change published after `__aenter__` returns is delivered.
        """
        ...


class InProcessChangeBus:
    """One process: each subscriber has its own bounded queue."""

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._queues: set[asyncio.Queue[Sequence[Change]]] = set()
        self._queue_size = queue_size

    async def publish(self, changes: Sequence[Change]) -> None:
        """Hand the changes to every subscriber (a full queue drops them, with a warning)."""
        for queue in self._queues:
            try:
                queue.put_nowait(tuple(changes))
            except asyncio.QueueFull:
                logger.warning("change subscriber too slow; changes dropped", count=len(changes))

    @asynccontextmanager
    async def subscription(self) -> AsyncIterator[AsyncIterator[Sequence[Change]]]:
        """Every batch published while the subscription is open."""
        queue: asyncio.Queue[Sequence[Change]] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)

        async def batches() -> AsyncIterator[Sequence[Change]]:
            while True:
                yield await queue.get()

        try:
            yield batches()
        finally:
            self._queues.discard(queue)


class RedisChangeBus:
    """Several processes: one Redis pub/sub channel, one JSON message per committed unit of work."""

    def __init__(self, redis: Redis, *, channel: str = CHANGES_CHANNEL) -> None:
        self._redis = redis
        self._channel = channel

    async def publish(self, changes: Sequence[Change]) -> None:
        """PUBLISH the changes; with Redis unreachable they are logged and dropped."""
        message = orjson.dumps([change.encoded() for change in changes])
        try:
            await self._redis.publish(self._channel, message)
        except (RedisError, OSError) as error:
            logger.warning("change events not published", error=str(error), count=len(changes))

    @asynccontextmanager
    async def subscription(self) -> AsyncIterator[AsyncIterator[Sequence[Change]]]:
        """Every batch published on the channel while the subscription is open.

        Entered once Redis has confirmed the SUBSCRIBE (a publish after that is ours).
        """
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            confirmation = await pubsub.get_message(timeout=5.0)
            if confirmation is None or confirmation.get("type") != "subscribe":
                raise ConnectionError(f"Redis did not confirm SUBSCRIBE {self._channel}")

            async def batches() -> AsyncIterator[Sequence[Change]]:
                # Polled, not `listen()`: a blocking read would time out on the client's
                # short socket timeout whenever the channel is quiet. The pool's health
                # check PINGs a quiet connection, so a dead Redis is noticed.
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = orjson.loads(message["data"])
                        yield [Change(entity, id) for entity, id in data]

            yield batches()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


__all__ = [
    "CHANGES_CHANNEL",
    "Change",
    "ChangeBus",
    "InProcessChangeBus",
    "RedisChangeBus",
    "entity_tag",
    "listing_tag",
    "tags_of",
]
