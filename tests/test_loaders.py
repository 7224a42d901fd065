"""BatchLoader.load_many: DataLoader's answers (order, batching, cache, errors), cheaper."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from app.loaders.base import BatchLoader


class Squares(BatchLoader[int, int]):
    """Squares keys; a batch holding 13 fails."""

    def __init__(self) -> None:
        super().__init__(db=None)  # type: ignore[arg-type]  # never reads the database
        self.batches: list[list[int]] = []

    async def load_batch(self, keys: list[int]) -> list[int]:
        self.batches.append(list(keys))
        await asyncio.sleep(0)
        if 13 in keys:
            raise RuntimeError("unlucky batch")
        return [key * key for key in keys]


async def test_values_come_in_key_order_from_one_batch() -> None:
    loader = Squares()

    many = loader.load_many([3, 1, 3, 2])
    one = loader.load(5)  # the same tick: the same batch
    values: Any = await asyncio.gather(many, one)

    assert values == [[9, 1, 9, 4], 25]
    assert loader.batches == [[3, 1, 2, 5]]


async def test_cached_keys_are_not_loaded_again() -> None:
    loader = Squares()
    await loader.load_many([1, 2])

    assert await loader.load_many([2, 3, 1]) == [4, 9, 1]
    assert loader.batches == [[1, 2], [3]]


async def test_a_failing_batch_fails_every_key_and_is_not_cached() -> None:
    loader = Squares()

    with pytest.raises(RuntimeError, match="unlucky batch"):
        await loader.load_many([12, 13])
    assert await loader.load(12) == 144  # the failure was not cached: loaded again
    assert loader.batches == [[12, 13], [12]]


async def test_no_failure_is_left_unread() -> None:
    # asyncio reports a future whose exception nobody read when the future is collected.
    # Only such reports count: the loop is the session's, and the collection may also meet
    # another test's abandoned task ("Task was destroyed but it is pending!").
    reports: list[str] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: reports.append(context["message"]) if "exception" in context else None
    )
    loader = Squares()

    with pytest.raises(RuntimeError):
        await loader.load_many([13, 14, 15])
    del loader
    gc.collect()
    asyncio.get_running_loop().set_exception_handler(None)  # the later tests' loop as it was

    assert reports == []


async def test_cancelling_one_caller_leaves_the_shared_load_to_the_others() -> None:
    # given two callers waiting on the same key (DataLoader caches one future per key)
    release = asyncio.Event()

    class SlowLoader(BatchLoader[int, int]):
        async def load_batch(self, keys: list[int]) -> list[int]:
            await release.wait()
            return [key * 10 for key in keys]

    loader = SlowLoader(None)  # type: ignore[arg-type]  # never reads the database
    cancelled = asyncio.ensure_future(loader.load(4))
    waiting = asyncio.ensure_future(loader.load(4))
    await asyncio.sleep(0)

    # when one of them is cancelled (graphql-core cancels the siblings of a failed field)
    cancelled.cancel()
    await asyncio.sleep(0)
    release.set()

    # then the other still gets its value
    assert await waiting == 40
    assert cancelled.cancelled()
