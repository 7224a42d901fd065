"""Shared subscriptions: one source per key, every result to every member, the last out stops it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from graphql import ExecutionResult

from app.engine import ClientError
from app.http.shared_streams import TOO_SLOW, SharedStreams


class Failed(Exception):
    """What the members are given when the source fails."""


class Source:
    """A subscription source fed by the test; records whether it was closed."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> ExecutionResult:
        item = await self.events.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            raise StopAsyncIteration
        return ExecutionResult(data={"n": item})

    async def aclose(self) -> None:
        self.closed = True


def _encode(result: ExecutionResult) -> bytes:
    return orjson.dumps(result.data)


async def _join(streams: SharedStreams, key: str, sources: list[Source]) -> AsyncIterator[bytes]:
    async def start() -> Source:
        source = Source()
        sources.append(source)
        return source

    joined = await streams.join(key, start, encode=_encode, failure=Failed)  # type: ignore[arg-type]
    assert not isinstance(joined, ExecutionResult)
    return joined


async def test_members_of_one_key_share_one_source_and_each_gets_every_result() -> None:
    streams = SharedStreams()
    sources: list[Source] = []
    first = await _join(streams, "product:1", sources)
    second = await _join(streams, "product:1", sources)
    other = await _join(streams, "product:2", sources)

    assert len(sources) == 2 and streams.group_count == 2
    sources[0].events.put_nowait(7)
    assert await anext(first) == b'{"n":7}'
    assert await anext(second) == b'{"n":7}'

    # the last member out stops the source
    await first.aclose()  # type: ignore[attr-defined]
    assert not sources[0].closed
    await second.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.01)
    assert sources[0].closed and streams.group_count == 1
    await other.aclose()  # type: ignore[attr-defined]


async def test_a_failing_source_fails_every_member_and_an_ended_one_ends_them() -> None:
    streams = SharedStreams()
    sources: list[Source] = []
    members = [await _join(streams, "k", sources) for _ in range(2)]
    sources[0].events.put_nowait(ClientError("gone"))
    for member in members:
        with pytest.raises(Failed):
            await anext(member)

    ending = await _join(streams, "k", sources)  # a new group: the failed one is gone
    assert len(sources) == 2
    sources[1].events.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await anext(ending)


async def test_a_member_that_falls_behind_is_ended_and_the_others_go_on() -> None:
    streams = SharedStreams(member_queue_size=2)
    sources: list[Source] = []
    slow = await _join(streams, "k", sources)
    fast = await _join(streams, "k", sources)
    for n in range(3):
        sources[0].events.put_nowait(n)
        assert await anext(fast) == f'{{"n":{n}}}'.encode()

    with pytest.raises(Failed) as ended:
        await anext(slow)
    assert ended.value.args[0].message == TOO_SLOW
    sources[0].events.put_nowait(3)
    assert await anext(fast) == b'{"n":3}'
    await fast.aclose()  # type: ignore[attr-defined]
