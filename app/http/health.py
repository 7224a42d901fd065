"""Liveness (`/health`, `/healthz`) and readiness (`/readyz`): whether to send this process traffic.

Readiness asks every dependency once, each within a short time, so a load balancer takes a
process whose database or Redis stopped answering out of rotation instead of letting its
requests time out. While the process drains on SIGTERM (app/http/draining.py) it is not
ready whatever its checks say. The checks are handed in by `main.py`: http imports no data
layer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.http.draining import Draining

logger = logging.getLogger("shopgraph.health")

Check = Callable[[], Awaitable[object]]
READINESS_TIMEOUT_SECONDS = 2.0


async def health(request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


class Readiness:
    """`/readyz`: 200 when every check passes within its time, else 503 naming what failed.

    A failing `optional` check (Redis: the server answers from the database without it)
    keeps the process in rotation: 200 with status "degraded".
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        optional: frozenset[str] = frozenset(),
        timeout: float = READINESS_TIMEOUT_SECONDS,
        draining: Draining | None = None,
    ) -> None:
        self.checks = dict(checks)
        self.draining = draining
        self.optional = optional
        self.timeout = timeout

    async def handle(self, request: Request) -> JSONResponse:
        """Run the checks concurrently; report each one."""
        if self.draining is not None and self.draining.started:
            return JSONResponse({"status": "draining"}, status_code=503)
        names = list(self.checks)
        outcomes = await asyncio.gather(*(self._check(name) for name in names))
        report = dict(zip(names, outcomes, strict=True))
        failed = {name for name, outcome in report.items() if outcome != "ok"}
        if failed - self.optional:
            return JSONResponse({"status": "not ready", **report}, status_code=503)
        return JSONResponse({"status": "degraded" if failed else "ready", **report})

    async def _check(self, name: str) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except TimeoutError:
            logger.warning("readiness: %s did not answer within %gs", name, self.timeout)
            return f"no answer within {self.timeout:g} s"
        except Exception as error:
            logger.warning("readiness: %s failed: %s: %s", name, type(error).__name__, error)
            return f"unavailable ({type(error).__name__})"
        return "ok"
