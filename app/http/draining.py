"""Graceful shutdown on SIGTERM: readiness goes not-ready first, then uvicorn drains.

uvicorn's own SIGTERM handling (stop accepting, let in-flight requests finish within
`timeout_graceful_shutdown`, then the lifespan shutdown) happens at once. A load
balancer that polls `/readyz` needs a moment to take the process out of rotation first,
so `Draining` chains itself in front of the signal handler uvicorn installed: on SIGTERM
it marks the process draining (`/readyz` answers 503 "draining"), runs the callbacks
registered with `on_drain` (the place where long-lived streams are told to go away, e.g.
WebSockets closed with 1001 so clients reconnect elsewhere), and hands the signal to
uvicorn after `delay_seconds` (0: at once). A second SIGTERM during the delay is handed
over at once; SIGINT (Ctrl+C) is left to uvicorn. Requests keep being served normally
during the delay.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger("shopgraph.shutdown")

Handler = Callable[[int, FrameType | None], Any]


class Draining:
    """Whether this process is shutting down; installed in the app's lifespan startup."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds
        self.started = False
        self._callbacks: list[Callable[[], object]] = []
        self._previous: dict[int, Handler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handed_over = False

    def on_drain(self, callback: Callable[[], object]) -> None:
        """Call `callback` (in the event loop) when draining starts."""
        self._callbacks.append(callback)

    def install(self) -> None:
        """Chain in front of the SIGTERM handler installed now (uvicorn's).

        Only in the main thread and only in front of a Python handler: an app served in a
        test's thread, or in-process by a test (the default SIGTERM), is left alone.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)
        if callable(previous):
            self._previous[signal.SIGTERM] = previous
            signal.signal(signal.SIGTERM, self._on_signal)

    def uninstall(self) -> None:
        """Put the chained handlers back (uvicorn restores its own originals after that)."""
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._previous.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self.started or loop is None or self.delay_seconds <= 0:
            self._start()
            self._hand_over(sig, frame)
            return
        self._start()
        logger.info("SIGTERM: not ready, stopping in %g s", self.delay_seconds)
        loop.call_soon_threadsafe(loop.call_later, self.delay_seconds, self._hand_over, sig, None)

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        loop = self._loop
        for callback in self._callbacks:
            if loop is not None:
                loop.call_soon_threadsafe(callback)
            else:
                callback()

    def _hand_over(self, sig: int, frame: FrameType | None) -> None:
        if self._handed_over:
            return
        self._handed_over = True
        previous = self._previous.get(sig)
        if previous is not None:
            previous(sig, frame)
