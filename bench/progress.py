"""Progress lines on stderr, and measurements that fail without stopping the suite."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import ParamSpec

import procs
import report

STARTED = time.monotonic()
P = ParamSpec("P")


def say(message: str) -> None:
    """A progress line on stderr, with the seconds since start."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def attempt(
    result: report.WorkloadResult, action: Callable[P, None], *args: P.args, **kwargs: P.kwargs
) -> bool:
    """Run a measurement; on failure keep the reason in the result and go on."""
    try:
        action(*args, **kwargs)
    except (RuntimeError, OSError, ValueError, procs.ServerFailed) as error:
        result.error = str(error).splitlines()[0][:300]
        say(f"{result.key}: {result.error}")
        return False
    return True
