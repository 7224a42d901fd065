"""Draining on SIGTERM (app/http/draining.py): not ready first, then the server's own handler."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from app.http.draining import Draining


@pytest.fixture
def server_handler() -> Iterator[list[tuple[int, float]]]:
    """A SIGTERM handler standing in for uvicorn's: it records when it was called."""
    calls: list[tuple[int, float]] = []

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        calls.append((sig, time.monotonic()))

    before = signal.signal(signal.SIGTERM, handle_exit)
    try:
        yield calls
    finally:
        signal.signal(signal.SIGTERM, before)


async def test_sigterm_starts_draining_and_reaches_the_server_after_the_delay(
    server_handler: list[tuple[int, float]],
) -> None:
    draining = Draining(delay_seconds=0.3)
    told: list[float] = []
    draining.on_drain(lambda: told.append(time.monotonic()))
    draining.install()
    try:
        sent = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert draining.started
        assert len(told) == 1  # the streams were told at once
        assert server_handler == []  # the server still serves
        await asyncio.sleep(0.4)
        assert len(server_handler) == 1
        assert server_handler[0][1] - sent >= 0.28
    finally:
        draining.uninstall()


async def test_a_second_sigterm_is_handed_over_at_once(
    server_handler: list[tuple[int, float]],
) -> None:
    draining = Draining(delay_seconds=5)
    draining.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert server_handler == []
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert len(server_handler) == 1
    finally:
        draining.uninstall()
    assert signal.getsignal(signal.SIGTERM) != draining._on_signal  # put back


async def test_without_a_server_handler_nothing_is_chained() -> None:
    # an app served in-process by a test: the default SIGTERM; Ctrl+C is never chained
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert before[0] == signal.SIG_DFL
    draining = Draining(delay_seconds=1)
    draining.install()
    try:
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    finally:
        draining.uninstall()
