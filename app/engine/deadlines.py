"""Awaiting work until a deadline, and answering at the deadline even if cleanup lingers.

`asyncio.timeout` cancels the work and then waits for it to unwind. Unwinding can wait in
turn: on cancellation SQLAlchemy closes the connection gracefully, shielded, for up to 2 s,
and a black-holed database path takes all of them. A request must be answered at its
deadline, so the work runs as its own task and is left to finish unwinding on its own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlinePassed(Exception):
    """The work did not finish by its deadline; it was cancelled and is unwinding."""


async def finish_by(work: Awaitable[T], deadline: float) -> T:
    """`work`'s result, or DeadlinePassed at `deadline` (the running loop's clock; inf: none)."""
    if not math.isfinite(deadline):
        return await work
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    # One future woken by whichever comes first, the work's end or the deadline: lighter
    # than asyncio.wait, which this runs for every operation.
    wake = loop.create_future()
    task.add_done_callback(partial(_wake, wake))
    timer = loop.call_at(deadline, _wake, wake, None)
    try:
        await wake
    except asyncio.CancelledError:
        _abandon(task)  # the caller is gone (e.g. the client left): so is its work
        raise
    finally:
        timer.cancel()
    if task.done():
        return task.result()
    _abandon(task)
    raise DeadlinePassed


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    _unwinding.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_collect)


def _wake(wake: asyncio.Future[None], _: object) -> None:
    if not wake.done():
        wake.set_result(None)


async def settle_unwinding(within_seconds: float) -> None:
    """Wait (up to `within_seconds`) for abandoned work of this loop to unwind: before shutdown,
    so that it closes its connections before their engines are disposed."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _unwinding if task.get_loop() is loop]
    if pending:
        await asyncio.wait(pending, timeout=within_seconds)


_unwinding: set[asyncio.Future[Any]] = set()


def _collect(task: asyncio.Future[Any]) -> None:
    _unwinding.discard(task)
    # Read the outcome of the abandoned work, so it is not reported as never retrieved.
    if not task.cancelled():
        task.exception()


__all__ = ["DeadlinePassed", "finish_by", "settle_unwinding"]
