"""Subscribers of the same operation share one running subscription.

A thousand clients watching the same product with the same document, variables and
viewer would otherwise each re-read the product and execute the selection on every
event: the same work a thousand times, and a thousand copies of the same state.
`SharedStreams` runs the operation once per key (document, operation name, variables,
and who is asking) and hands every result to each member's bounded queue; the source
stops when its last member leaves. What a result may show depends only on the key, so
members see exactly what their own subscription would have shown. A member that does
not keep up (its queue is full) is ended with an error rather than silently skipping
events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from graphql import ExecutionResult

from app.engine import ClientError, ErrorCode

Source = AsyncIterator[ExecutionResult]
Encode = Callable[[ExecutionResult], bytes]
Failure = Callable[[Exception], BaseException]
_END = object()  # the source ended: members complete


TOO_SLOW = "This subscriber did not keep up with its events; subscribe again"


@dataclass(eq=False)
class _Group:
    key: Hashable
    source: Source
    encode: Encode
    failure: Failure
    anchor: object
    members: set[asyncio.Queue[object]] = field(default_factory=set)
    pump: asyncio.Task[None] | None = None


class SharedStreams:
    """The running subscriptions of this process, by what they run for whom."""

    def __init__(self, *, member_queue_size: int = 100) -> None:
        self._groups: dict[Hashable, _Group] = {}
        self._queue_size = member_queue_size

    @property
    def group_count(self) -> int:
        """How many distinct subscriptions run (tests and metrics)."""
        return len(self._groups)

    async def join(
        self,
        key: Hashable,
        start: Callable[[], Awaitable[Source | ExecutionResult]],
        *,
        encode: Encode,
        failure: Failure,
        anchor: object = None,
    ) -> AsyncIterator[bytes] | ExecutionResult:
        """A member's stream of the subscription `key` names, started with `start` if none
        runs; or the result `start` gave instead of a stream (errors).

        A starting group encodes each result once with `encode` and turns what its source
        raises into the members' error with `failure`; it holds `anchor` while it runs
        (what the key names by identity)."""
        group = self._groups.get(key)
        if group is None:
            started = await start()
            if isinstance(started, ExecutionResult):
                return started
            group = self._groups.get(key)  # another member may have started it meanwhile
            if group is None:
                group = _Group(key, started, encode, failure, anchor)
                self._groups[key] = group
                group.pump = asyncio.create_task(self._pump(group), name="shared-subscription")
            else:
                await _close(started)
        return _Member(self, group)

    def _leave(self, group: _Group, queue: asyncio.Queue[object]) -> None:
        group.members.discard(queue)
        if not group.members and self._groups.get(group.key) is group:
            del self._groups[group.key]
            if group.pump is not None:
                group.pump.cancel()

    async def _pump(self, group: _Group) -> None:
        """Read the source and hand each result to every member."""
        end: object = _END
        try:
            async for result in group.source:
                payload = group.encode(result)
                for queue in tuple(group.members):
                    _offer(queue, payload, group)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the members report it to their clients
            end = group.failure(error)
        finally:
            if self._groups.get(group.key) is group:
                del self._groups[group.key]
            await _close(group.source)
        for queue in tuple(group.members):
            _offer(queue, end, group, final=True)


class _Member:
    """One member's results; `aclose` leaves the group (the last one out stops it)."""

    def __init__(self, streams: SharedStreams, group: _Group) -> None:
        self._streams = streams
        self._group = group
        self._queue: asyncio.Queue[object] = asyncio.Queue(streams._queue_size)
        self._open = True
        group.members.add(self._queue)

    def __aiter__(self) -> _Member:
        return self

    async def __anext__(self) -> bytes:
        if not self._open:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            await self.aclose()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            await self.aclose()
            raise item
        assert isinstance(item, bytes)
        return item

    async def aclose(self) -> None:
        """Leave the group (idempotent)."""
        if self._open:
            self._open = False
            self._streams._leave(self._group, self._queue)


def _offer(
    queue: asyncio.Queue[object], item: object, group: _Group, *, final: bool = False
) -> None:
    try:
        queue.put_nowait(item)
        return
    except asyncio.QueueFull:
        pass
    # This member fell behind: it ends (with an error) instead of silently missing events.
    while not queue.empty():
        queue.get_nowait()
    slow = group.failure(ClientError(TOO_SLOW, code=ErrorCode.SERVICE_UNAVAILABLE))
    queue.put_nowait(item if final and isinstance(item, BaseException) else slow)


async def _close(source: Source) -> None:
    with contextlib.suppress(Exception):
        await source.aclose()  # type: ignore[attr-defined]


__all__ = ["SharedStreams", "Source"]
