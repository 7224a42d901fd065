"""The admission pipeline: named steps between a transport and the engine.

A transport (HTTP today; WebSocket/SSE later) reads a request into `GraphQLParams`, makes
a `RequestState` and hands it to `Pipeline.run`, which returns an `Outcome`: the response
body and how the request ended. In between, each step does one thing and knows no other:

    authenticate -> persisted document -> admission -> (refuse an unresolved document) ->
    refuse NUL -> limits and cost -> partner scopes -> rate limit -> refund -> response
    cache -> execute under timeout -> respond

A step is an object with `async def __call__(self, state, call_next)`; it reads what
earlier steps put on the state, adds its own, and either calls `call_next(state)` or
stops the request by setting `state.refusal` or `state.errors`. Work that comes after
execution is done when `call_next` returns: so `Refund` stands before `Execute` in the
list (`app/main.py` builds it) and gives points back once execution is over. `respond`
then turns the state into the body. New steps (persisted documents before limits and
cost, a response cache before execution) are one more object in that list; the persisted
document steps are in app/http/persisted.py.

The chain is linked once, at start-up: a request allocates its state and nothing else.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, Protocol

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import HTTPConnection

from app.engine import ClientError, CostPlan, PreparedDocument, client_error
from app.http.errors import (
    RequestError,
    internal_error_body,
    log_unexpected,
    logger,
    stray_cancellation,
)
from app.platform.ratelimit import BucketState, Budget


@dataclass(frozen=True, slots=True)
class GraphQLParams:
    """What the client asked to run (`query` is empty when a persisted document is named)."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None = None
    document_id: str | None = None  # GraphQL over HTTP, appendix A: persisted documents


OperationCheck = Callable[[OperationType], RequestError | None]
# What an unexpected exception means when it is a dependency's failure, not a bug (a
# database outage: SERVICE_UNAVAILABLE, 503 before execution); None: a bug, masked and
# logged in full.
Translate = Callable[[BaseException], ClientError | None]


@dataclass(slots=True, eq=False)
class RequestState:
    """One request on its way through the pipeline: what the transport gave, what steps found.

    The transport fills the first four fields; the rest start empty and are set by the step
    named in their comment.
    """

    connection: HTTPConnection  # headers and client address (an HTTP request or a WebSocket)
    params: GraphQLParams
    request_id: str
    # What this transport may run (HTTP GET: queries only): a refusal, or None to go on.
    check_operation: OperationCheck
    started: float = 0.0  # Pipeline.run
    # Pipeline.run: the event loop's clock by which the request must be answered; every
    # step that waits (authentication, execution) waits no longer.
    deadline: float = math.inf
    context: Any = None  # authenticate: what resolvers see as info.context
    # persisted document: its refusal, answered once admission has charged the request
    unresolved: RequestError | None = None
    admitted: int = 0  # admission: the points it charged (never refunded)
    # admission: points charged but not taken yet (a cached document: no parse to pay for
    # first), taken with the rate limit's take; admission takes them itself if none came.
    due: int = 0
    prepared: PreparedDocument | None = None  # limits and cost
    cost_plan: CostPlan | None = None  # limits and cost
    requested: int | None = None  # limits and cost: set once the cost is known
    budget: Budget | None = None  # admission, rate limit
    bucket: BucketState | None = None  # admission, rate limit, then refund
    # rate limit: the points taken for the operation (the requested cost, or the price a
    # cached response was stored with); refund gives back what the operation did not use.
    operation_points: int | None = None
    actual: int | None = None  # execute: the cost the operation really had
    sql_statements: int | None = None  # execute, when statements are counted (debug)
    # The answer so far: a refusal (a request error with its own status), or errors and data.
    refusal: RequestError | None = None
    errors: Sequence[GraphQLError] = ()
    data: dict[str, Any] | None = None
    executed: bool = False  # the operation ran (False: no `data` entry in the response)
    # response cache: `data` already encoded (a hit, or a miss it stored), the caching
    # headers of the response, 304 for a matching If-None-Match, the request's hit counts.
    encoded_data: bytes | None = None
    # response cache: what it looks up (planned once; the rate limit may read it for it)
    response_plan: Any = None
    response_snapshot: Any = None  # rate limit: the cache read made with its take
    response_headers: dict[str, str] | None = None
    not_modified: bool = False
    cache_stats: Any = None
    # subscribe (WebSocket and SSE only): the started subscription's results, one JSON-encoded
    # payload per event
    stream: AsyncIterator[bytes] | None = None


Next = Callable[[RequestState], Awaitable[None]]


class Step(Protocol):
    """One named unit of the pipeline."""

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Do this step's work; call `call_next(state)` to go on, or return to stop."""
        ...


class Outcome(NamedTuple):
    """What the pipeline answers.

    `status` is set for refusals that have their own (401, 405, 429, 500); when it is None
    the transport picks it from `executed` (a request that never ran is a client error).
    """

    body: dict[str, Any] | bytes  # bytes: already encoded (a cached response)
    status: int | None
    executed: bool
    headers: Mapping[str, str] | None


async def _end(state: RequestState) -> None:
    """After the last step: nothing more to do."""


def cost_extension(
    requested: int, actual: int, bucket: BucketState | None, admitted: int = 0
) -> dict[str, Any]:
    """The `extensions.cost` object of a response (`admissionCost` when one was charged)."""
    cost: dict[str, Any] = {"requestedQueryCost": requested, "actualQueryCost": actual}
    if admitted:
        cost["admissionCost"] = admitted
    if bucket is not None:
        cost["throttleStatus"] = {
            "maximumAvailable": bucket.capacity,
            "currentlyAvailable": max(0, math.floor(bucket.available)),
            "restoreRate": bucket.restore_rate,
        }
    return cost


def respond(state: RequestState, translate: Translate | None = None) -> Outcome:
    """The last step: the response body from what the others left on the state."""
    if state.not_modified:
        return Outcome(b"", 304, True, state.response_headers)
    body: dict[str, Any] = {}
    refusal = state.refusal
    if refusal is not None:
        body["errors"] = [refusal.formatted]
    elif state.errors:
        request_id = state.request_id
        errors = state.errors if translate is None else _translated(state, translate)
        body["errors"] = [client_error(error, request_id).formatted for error in errors]
    if state.executed:
        body["data"] = state.data
    extensions: dict[str, Any] = {}
    if state.requested is not None:
        extensions["cost"] = cost_extension(
            state.requested, state.actual or 0, state.bucket, state.admitted
        )
    if state.sql_statements is not None:
        extensions["debug"] = debug = {
            "sqlStatements": state.sql_statements,
            "durationMs": round((time.perf_counter() - state.started) * 1000, 2),
        }
        if state.cache_stats is not None:
            debug["cache"] = state.cache_stats.as_debug()
    if refusal is not None:
        if extensions:
            body["extensions"] = extensions
        return Outcome(body, refusal.status, False, refusal.headers)
    encoded = state.encoded_data
    if encoded is not None and "errors" not in body:
        # A cached body: its data is spliced in as stored, only the extensions are encoded.
        tail = b',"extensions":' + orjson.dumps(extensions) + b"}" if extensions else b"}"
        return Outcome(b'{"data":' + encoded + tail, None, True, state.response_headers)
    if extensions:
        body["extensions"] = extensions
    return Outcome(body, None, state.executed, state.response_headers)


def _translated(state: RequestState, translate: Translate) -> list[GraphQLError]:
    """The errors, with unexpected ones that `translate` knows replaced by client errors."""
    errors: list[GraphQLError] = []
    known: dict[int, ClientError | None] = {}  # one batch's failure fails many fields
    for error in state.errors:
        original = error.original_error
        if original is None or isinstance(original, ClientError | GraphQLError):
            errors.append(error)
            continue
        if id(original) not in known:
            known[id(original)] = meaning = translate(original)
            if meaning is not None:
                _log_translated(state, original, meaning)
        meaning = known[id(original)]
        if meaning is None:
            errors.append(error)
        else:
            errors.append(
                GraphQLError(meaning.message, error.nodes, path=error.path, original_error=meaning)
            )
    return errors


def _log_translated(state: RequestState, error: BaseException, meaning: ClientError) -> None:
    # One line, no traceback: an outage is no bug, and it fails every request alike.
    logger.warning(
        "request failed on a dependency",
        request_id=state.request_id,
        code=meaning.code.value,
        cause=f"{type(error).__name__}: {error}"[:300],
    )


class Pipeline:
    """The steps in order, linked once; `run` answers every request with an Outcome.

    `time_limit` (seconds) sets each request's deadline; `translate` names the unexpected
    failures that are no bug (see `Translate`).
    """

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        time_limit: float | None = None,
        translate: Translate | None = None,
    ) -> None:
        self.steps = tuple(steps)
        self.time_limit = time_limit
        self.translate = translate
        chain: Next = _end
        for step in reversed(self.steps):
            chain = partial(step, call_next=chain)
        self._chain = chain

    async def run(self, state: RequestState) -> Outcome:
        """Take the request through every step; an unexpected failure is a masked 500."""
        state.started = time.perf_counter()
        if self.time_limit is not None:
            state.deadline = asyncio.get_running_loop().time() + self.time_limit
        try:
            await self._chain(state)
        except asyncio.CancelledError as error:
            if not stray_cancellation():
                raise
            return self._internal_error(state, error)
        except Exception as error:
            return self._internal_error(state, error)
        return respond(state, self.translate)

    def _internal_error(self, state: RequestState, error: BaseException) -> Outcome:
        meaning = None if self.translate is None else self.translate(error)
        if meaning is None:
            log_unexpected(error, request_id=state.request_id, where="graphql pipeline")
            return Outcome(internal_error_body(state.request_id), 500, False, None)
        _log_translated(state, error, meaning)
        body = {
            "errors": [{"message": meaning.message, "extensions": {"code": meaning.code.value}}]
        }
        return Outcome(body, 503, False, {"Retry-After": "1"})


__all__ = [
    "GraphQLParams",
    "Next",
    "OperationCheck",
    "Outcome",
    "Pipeline",
    "RequestState",
    "Step",
    "Translate",
    "cost_extension",
    "respond",
]
