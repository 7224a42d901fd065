"""Admission steps that run before any parse (see app/http/pipeline.py).

`Admission` refuses query text over the byte limit and charges every request a few points
from the caller's bucket before its document is prepared: no request is free, and a new
document pays for its parse and validation by its size. `RefuseNul` refuses variables
holding U+0000, which PostgreSQL text cannot store (string literals of the document are
checked when it is prepared: app/engine/documents.py).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

from app.engine import ErrorCode
from app.engine.documents import NUL, nul_error
from app.http.errors import RequestError
from app.http.pipeline import Next, RequestState
from app.http.steps import refuse_admission
from app.platform.ratelimit import Budget, RateLimiter

KB = 1024


def query_bytes(query: str) -> int:
    """The UTF-8 length of `query` (its length when ASCII: no encoding needed)."""
    return len(query) if query.isascii() else len(query.encode("utf-8", "surrogatepass"))


class Admission:
    """Refuses oversized query text (413) and takes the admission charge (429 when empty).

    The charge is `charge` points, plus `per_kb` points per started KB of a document the
    cache does not hold (its parse and validation are still to be paid). Without a
    limiter (rate limits off) only the size is checked.

    With `defer_cached` (a rate-limit step follows), a document the cache holds costs no
    parse, so its charge is left `due` and taken with the rate limit's take: one round trip
    to the bucket store instead of two. If the request ends before that take (refused by a
    later step), the charge is taken then, and an empty bucket still answers 429.
    """

    def __init__(
        self,
        *,
        max_query_bytes: int,
        cached: Container[str],
        limiter: RateLimiter | None,
        budget_for: Callable[[Any], Budget],
        charge: int,
        per_kb: int,
        hold_refusal_seconds: float = 0.0,
        defer_cached: bool = False,
    ) -> None:
        self.max_query_bytes = max_query_bytes
        self.defer_cached = defer_cached
        self.hold_refusal_seconds = hold_refusal_seconds
        self.cached = cached
        self.limiter = limiter
        self.budget_for = budget_for
        self.charge = charge
        self.per_kb = per_kb

    def points(self, query: str, size: int) -> tuple[int, bool]:
        """What admitting `query` (of `size` bytes) costs now, and whether it needs a parse."""
        if size > self.max_query_bytes or query not in self.cached:
            return self.charge + -(-size // KB) * self.per_kb, True
        return self.charge, False

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Refuse, or set `budget`, `bucket` and `admitted` and go on."""
        query = state.params.query
        size = query_bytes(query)
        oversized = size > self.max_query_bytes
        # An oversized document is charged too, by its size (its body was read and decoded):
        # else a flood of them would be free. At most the whole bucket.
        if self.limiter is not None and not await self._charge(state, query, size):
            return
        if state.due:
            await call_next(state)
            if state.due:  # nobody took it: a later step refused the request first
                await self._take_due(state)
            return
        if oversized:
            state.refusal = RequestError(
                413,
                f"The query is {size} bytes long; the maximum is {self.max_query_bytes}. "
                "Send a shorter document.",
                ErrorCode.QUERY_TOO_COMPLEX,
            )
            return
        await call_next(state)

    async def _charge(self, state: RequestState, query: str, size: int) -> bool:
        """Take the admission charge; False (and a 429 refusal) when it does not fit."""
        limiter = self.limiter
        assert limiter is not None
        points, parse = self.points(query, size)
        if not points:
            return True
        budget = self.budget_for(state.context)
        points = min(points, budget.capacity)
        state.budget = budget
        state.admitted = points
        if self.defer_cached and not parse:
            state.due = points
            return True
        bucket = await limiter.take(
            budget.key, points, capacity=budget.capacity, restore_rate=budget.restore_rate
        )
        state.bucket = bucket
        if not bucket.allowed:
            await refuse_admission(state, points, bucket, self.hold_refusal_seconds)
            return False
        return True

    async def _take_due(self, state: RequestState) -> None:
        """Take the deferred charge; an empty bucket turns the answer into a 429."""
        limiter, budget, points = self.limiter, state.budget, state.due
        assert limiter is not None and budget is not None
        state.due = 0
        bucket = await limiter.take(
            budget.key, points, capacity=budget.capacity, restore_rate=budget.restore_rate
        )
        state.bucket = bucket
        if not bucket.allowed:
            # As if refused before the parse: no errors or data of the request are answered.
            state.errors = ()
            state.executed = False
            state.data = None
            state.requested = None
            await refuse_admission(state, points, bucket, self.hold_refusal_seconds)


def _nul_at(value: object, where: str) -> str | None:
    """Where in `value` (a decoded JSON value named `where`) a string holds U+0000."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                return f"{where} (a key)"
            found = _nul_at(item, f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


class RefuseNul:
    """Refuses (BAD_USER_INPUT) a request whose variables hold U+0000 anywhere, naming where."""

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Set `errors` and stop, or go on."""
        variables = state.params.variables
        if variables:
            found = _nul_at(variables, "$")
            if found is not None:
                name = found.removeprefix("$.")
                state.errors = (nul_error(f"Variable `${name}`"),)
                return
        await call_next(state)


__all__ = ["Admission", "RefuseNul", "query_bytes"]
