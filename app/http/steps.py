"""The admission steps (see app/http/pipeline.py): each one small, none aware of the others."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from graphql import ExecutionResult, GraphQLError
from starlette.requests import HTTPConnection

from app.engine import (
    DeadlinePassed,
    ErrorCode,
    GraphQLExecutor,
    OperationNotFound,
    OperationTimeout,
    QueryTooComplex,
    Required,
    finish_by,
    too_complex,
)
from app.http.errors import RequestError
from app.http.pipeline import Next, RequestState
from app.platform.charged_read import ChargedReader, take_with_due
from app.platform.errors import Unauthenticated
from app.platform.ratelimit import BucketState, Budget, RateLimiter
from app.platform.scopes import USERS_ONLY, outside_parts

ContextFactory = Callable[[HTTPConnection], Awaitable[Any]]
# The scopes of the caller's token; None for callers that have none (users, anonymous).
ScopesOf = Callable[[Any], frozenset[str] | None]


class StatementCount(Protocol):
    """What a statement counter shows once it is done."""

    count: int


# Made by the data layer (app.db.count_statements) and handed in by app/main.py.
CountStatements = Callable[[], AbstractContextManager[StatementCount]]


class Authenticate:
    """Builds the resolvers' context for the caller; refuses a bad credential (401).

    Looking the caller up may read the database: it runs within the request's deadline,
    and a lookup that does not end by then is a 503 (TIMEOUT), never a hung request.
    """

    def __init__(self, context_factory: ContextFactory) -> None:
        self.context_factory = context_factory

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Set `state.context`, or refuse."""
        if "authorization" not in state.connection.headers:
            # No credentials: nothing to look up, so no timer to arm (the common case).
            state.context = await self.context_factory(state.connection)
            return await call_next(state)
        try:
            state.context = await finish_by(self.context_factory(state.connection), state.deadline)
        except DeadlinePassed:
            state.refusal = RequestError(
                503,
                "Signing the caller in did not finish in time (the database is slow or "
                "unreachable); retry in a moment",
                ErrorCode.TIMEOUT,
                {"Retry-After": "1"},
            )
            return
        except Unauthenticated as error:
            state.refusal = RequestError(
                401,
                str(error),
                ErrorCode.UNAUTHENTICATED,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return
        await call_next(state)


class LimitsAndCost:
    """Prepares the document (parse, limits, validation; once per distinct document), picks
    the operation, lets the transport refuse it, and refuses one that costs too much.

    `max_cost_for(context)` is the most one operation of this caller may cost.
    """

    def __init__(self, executor: GraphQLExecutor, max_cost_for: Callable[[Any], int]) -> None:
        self.executor = executor
        self.max_cost_for = max_cost_for

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Set `prepared`, `cost_plan` and `requested`, or stop with errors or a refusal."""
        params = state.params
        prepared = self.executor.prepare(params.query)
        if prepared.operations:
            # Which operation runs, and whether the transport may run it, comes before
            # validation errors: a mutation over GET is 405 even if it is also invalid.
            try:
                operation_type = prepared.operation_type(params.operation_name)
            except OperationNotFound as error:
                state.refusal = RequestError(400, str(error), ErrorCode.BAD_REQUEST)
                return
            refusal = state.check_operation(operation_type)
            if refusal is not None:
                state.refusal = refusal
                return
        if prepared.errors:
            state.errors = prepared.errors
            return
        plan = prepared.cost_plan(params.operation_name)
        requested = plan.requested(params.variables)
        state.prepared = prepared
        state.cost_plan = plan
        state.requested = requested
        maximum = self.max_cost_for(state.context)
        if requested > maximum:
            state.errors = (
                too_complex(
                    f"The query costs {requested} points; the maximum is {maximum}. "
                    "Ask for smaller pages or fewer nested connections."
                ),
            )
            return
        await call_next(state)


class PartnerScopes:
    """Refuses (403 FORBIDDEN) a partner operation that selects a field outside its token's scopes.

    Fields declare the scope they need in their metadata under `key` (app/schema/scopes.py);
    what an operation requires is computed once per document, operation and @skip/@include
    values (GraphQLExecutor.required), so a request compares a few values. Callers without
    scopes (`scopes_of` answers None) pass at the cost of one call.
    """

    def __init__(self, executor: GraphQLExecutor, *, key: str, scopes_of: ScopesOf) -> None:
        self.executor = executor
        self.key = key
        self.scopes_of = scopes_of

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Go on when the token holds every scope the operation needs; else refuse."""
        held = self.scopes_of(state.context)
        if held is None:
            return await call_next(state)
        prepared = state.prepared
        assert prepared is not None, "limits and cost runs first"
        params = state.params
        try:
            required = self.executor.required(
                prepared, self.key, operation_name=params.operation_name, variables=params.variables
            )
        except QueryTooComplex as error:
            state.errors = (too_complex(str(error)),)
            return
        missing = {value: where for value, where in required.items() if value not in held}
        if missing:
            state.refusal = outside_scopes(missing)
            return
        await call_next(state)


def outside_scopes(missing: Required) -> RequestError:
    """The 403 of an operation selecting fields its token's scopes do not cover (RFC 6750 3.1)."""
    scopes = [str(value) for value in sorted(missing, key=str) if value != USERS_ONLY]
    challenge = 'Bearer error="insufficient_scope"'
    if scopes:
        challenge += f', scope="{" ".join(scopes)}"'
    return RequestError(
        403,
        "Outside this token's scopes: " + "; ".join(outside_parts(missing)),
        ErrorCode.FORBIDDEN,
        {"WWW-Authenticate": challenge},
        {
            "missingScopes": scopes,
            "fields": sorted(field for where in missing.values() for field in where),
        },
    )


def throttled(
    requested: int, bucket: BucketState, *, what: str = "the query costs"
) -> RequestError:
    """The 429 refusal of an operation (or admission) that does not fit in the bucket now."""
    wait = bucket.retry_after
    if not math.isfinite(wait):  # cannot happen: costs over the capacity are refused first
        wait = bucket.capacity / bucket.restore_rate
    retry_after = max(1, math.ceil(wait))
    message = (
        f"Throttled: {what} {requested} points and "
        f"{max(0, math.floor(bucket.available))} of {bucket.capacity} are available, "
        f"restoring {bucket.restore_rate:g} per second. Retry in {retry_after} s."
    )
    return RequestError(429, message, ErrorCode.THROTTLED, {"Retry-After": str(retry_after)})


async def refuse_admission(
    state: RequestState, points: int, bucket: BucketState, hold_seconds: float
) -> None:
    """Refuse (429) a request whose admission charge does not fit, after the hold."""
    state.refusal = throttled(points, bucket, what="admitting the request costs")
    # A caller with an empty bucket gets its 429 late: a client that asks again at once (a
    # flood on a few connections) then costs a sleeping task, not a turn of the event loop
    # per request that its neighbours wait behind.
    hold = min(hold_seconds, bucket.retry_after)
    if hold > 0:
        await asyncio.sleep(hold)


class RateLimit:
    """Takes the requested cost (and a deferred admission charge) from the caller's bucket.

    429 when it does not fit. `lookup(state)` (the response cache's plan) names the cached
    response this request may be answered with: then `reader` reads it in the same round
    trip as the take, and a hit is charged the price it was stored with instead of the
    estimate (app/platform/charged_read.py); the response cache step uses what was read.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        budget_for: Callable[[Any], Budget],
        *,
        lookup: Callable[[RequestState], str | None] | None = None,
        reader: ChargedReader | None = None,
        hold_refusal_seconds: float = 0.0,
    ) -> None:
        self.limiter = limiter
        self.budget_for = budget_for
        self.lookup = lookup
        self.reader = reader
        self.hold_refusal_seconds = hold_refusal_seconds

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Set `budget`, `bucket` and `operation_points`, or refuse."""
        requested = state.requested
        assert requested is not None, "limits and cost runs first"
        due = state.due
        if requested == 0 and not due and state.bucket is not None:
            state.operation_points = 0
            return await call_next(state)  # admission already read the bucket: spare a trip
        budget = self.budget_for(state.context)
        key = self.lookup(state) if self.lookup is not None and self.reader is not None else None
        if key is not None and self.reader is not None:
            charged = await self.reader.read(budget, key, due=due, requested=requested)
            bucket, operation = charged.bucket, charged.operation_points
            due_taken = charged.due_taken
            state.response_snapshot = charged.snapshot
        else:
            operation = requested
            bucket, due_taken = await take_with_due(self.limiter, budget, due, operation)
        state.due = 0  # taken with the operation's points, or alone, or refused
        state.budget = budget
        state.bucket = bucket
        if not bucket.allowed:
            if due and not due_taken:  # the admission charge alone does not fit
                await refuse_admission(state, due, bucket, self.hold_refusal_seconds)
            else:
                state.refusal = throttled(operation, bucket)
            return
        state.operation_points = operation
        await call_next(state)


class Refund:
    """Once the operation has run, gives back to the bucket what it did not spend."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Go on; then return `operation_points - actual` and keep the bucket's new state."""
        await call_next(state)
        budget, actual, taken = state.budget, state.actual, state.operation_points
        if budget is None or actual is None or taken is None or actual == taken:
            return
        state.bucket = await self.limiter.give_back(
            budget.key,
            taken - actual,
            capacity=budget.capacity,
            restore_rate=budget.restore_rate,
        )


class Execute:
    """Runs the operation under a wall-clock timeout; sets errors, data and the actual cost.

    A stopped operation costs what was requested: its work was done. With
    `count_statements`, the SQL statements it ran are counted (debug output).
    """

    def __init__(
        self,
        executor: GraphQLExecutor,
        *,
        timeout_seconds: float,
        count_statements: CountStatements | None = None,
    ) -> None:
        # The clock runs from the request's deadline (set by the pipeline) where there is one;
        # `timeout_seconds` is what the client is told.
        self.executor = executor
        self.timeout_seconds = timeout_seconds
        self.count_statements = count_statements

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Execute; the innermost step, it does not go on."""
        if self.count_statements is None:
            result, timed_out = await self._run(state)
        else:
            with self.count_statements() as statements:
                result, timed_out = await self._run(state)
            state.sql_statements = statements.count
        errors = result.errors or ()
        state.errors = errors
        state.data = result.data
        # Variable coercion fails before execution: no path, no data, and no `data` entry.
        state.executed = timed_out or not (
            errors and result.data is None and all(error.path is None for error in errors)
        )

    async def _run(self, state: RequestState) -> tuple[ExecutionResult, bool]:
        prepared, plan = state.prepared, state.cost_plan
        assert prepared is not None and plan is not None, "limits and cost runs first"
        params = state.params
        time_limit = self.timeout_seconds
        if math.isfinite(state.deadline):
            time_limit = max(0.0, state.deadline - asyncio.get_running_loop().time())
        try:
            result = await self.executor.execute(
                prepared,
                context=state.context,
                variables=params.variables,
                operation_name=params.operation_name,
                time_limit=time_limit,
            )
        except OperationTimeout:
            stopped = GraphQLError(
                f"The operation did not finish within {self.timeout_seconds:g} s and was "
                "stopped; ask for less data",
                extensions={"code": ErrorCode.TIMEOUT.value},
            )
            state.actual = state.requested
            return ExecutionResult(data=None, errors=[stopped]), True
        state.actual = plan.actual(result.data)
        return result, False


__all__ = [
    "Authenticate",
    "ContextFactory",
    "CountStatements",
    "Execute",
    "LimitsAndCost",
    "PartnerScopes",
    "RateLimit",
    "Refund",
    "ScopesOf",
    "StatementCount",
    "outside_scopes",
    "refuse_admission",
    "throttled",
]
