"""Operations over the streaming transports (WebSocket, SSE): the pipeline, then a stream.

The streaming transports take every operation through the same admission pipeline as
HTTP (authentication, persisted documents, limits and cost, partner scopes, the rate
limit), with `Subscribe` as its innermost step: a subscription starts there and its
results stream out one per event; a query or mutation runs as over HTTP and has one
result. `StreamingOperations.start` gives the transport either.

A subscription is charged its requested cost once, when it starts; its events are not
charged again (they run the same selection, bounded by that cost). Each event's result is
encoded once, for every subscriber sharing the subscription (app/http/shared_streams.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.requests import HTTPConnection

from app.engine import ClientError, ErrorCode, GraphQLExecutor, client_error
from app.http.errors import RequestError
from app.http.pipeline import GraphQLParams, Next, Pipeline, RequestState
from app.http.shared_streams import SharedStreams
from app.http.steps import Execute


class Subscribe:
    """The innermost step of the streaming transports: start a subscription, or execute.

    Subscribers whose operation, variables and `share_key_of(context)` are the same share
    one running subscription (app/http/shared_streams.py).
    """

    def __init__(
        self,
        executor: GraphQLExecutor,
        execute: Execute,
        share_key_of: Callable[[Any], Hashable],
        shared: SharedStreams | None = None,
    ) -> None:
        self.executor = executor
        self.execute = execute
        self.share_key_of = share_key_of
        self.shared = shared or SharedStreams()

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Set `state.stream` for a subscription; run anything else as `Execute` does."""
        prepared = state.prepared
        assert prepared is not None, "limits and cost runs first"
        params = state.params
        if prepared.operation_type(params.operation_name) is not OperationType.SUBSCRIPTION:
            await self.execute(state, call_next)
            return
        # By the prepared document's identity (the group keeps it alive, so the id cannot
        # be reused while the key is in use): persisted documents have no query text here.
        key = (
            id(prepared),
            params.operation_name,
            orjson.dumps(params.variables, option=orjson.OPT_SORT_KEYS),
            self.share_key_of(state.context),
        )

        request_id = state.request_id

        async def start() -> AsyncIterator[ExecutionResult] | ExecutionResult:
            return await self.executor.subscribe(
                prepared,
                context=state.context,
                variables=params.variables,
                operation_name=params.operation_name,
            )

        started = await self.shared.join(
            key,
            start,
            encode=partial(encoded_result, request_id=request_id),
            failure=partial(stream_failure, request_id=request_id),
            anchor=prepared,
        )
        if isinstance(started, ExecutionResult):  # variables, or the root field refused
            state.errors = started.errors or ()
            return
        state.stream = started
        state.actual = state.requested  # charged once, at the start
        state.executed = True


def every_operation(operation: OperationType) -> RequestError | None:
    """What a WebSocket or SSE POST may run: anything."""
    return None


def no_mutation(operation: OperationType) -> RequestError | None:
    """What an SSE GET may run: queries and subscriptions (GET must not change anything)."""
    if operation is OperationType.MUTATION:
        return RequestError(
            405, "Mutations must be sent with POST", ErrorCode.METHOD_NOT_ALLOWED, {"Allow": "POST"}
        )
    return None


async def _nothing_to_close() -> None:
    """A single result holds nothing open."""


class StreamFailed(Exception):
    """A started subscription ended with errors (its source failed or refused)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "subscription failed")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Started:
    """What an operation gave: one result (`status` set for a refusal), or a stream.

    The transport must call `close` when it is done with a stream (even unread).
    """

    result: Mapping[str, Any] | None
    status: int | None
    stream: AsyncIterator[bytes] | None  # each event's payload, JSON-encoded
    close: Callable[[], Awaitable[None]] = _nothing_to_close


class StreamingOperations:
    """Runs operations for the streaming transports through their pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def start(
        self,
        connection: HTTPConnection,
        params: GraphQLParams,
        request_id: str,
        check: Any = every_operation,
    ) -> Started:
        """Admit and start one operation."""
        state = RequestState(connection, params, request_id, check)
        outcome = await self.pipeline.run(state)
        if state.stream is None:
            body = outcome.body
            result = orjson.loads(body) if isinstance(body, bytes) else body
            return Started(result, outcome.status, None)
        stream = state.stream
        return Started(None, None, stream, stream.aclose)  # type: ignore[attr-defined]


def encoded_result(result: ExecutionResult, request_id: str) -> bytes:
    """One event's result as its JSON payload (errors made safe to show)."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [client_error(error, request_id).formatted for error in result.errors]
    return orjson.dumps(payload)


def stream_failure(error: Exception, request_id: str) -> StreamFailed:
    """What a subscription's source raised, as the errors its subscribers are sent."""
    if isinstance(error, StreamFailed):
        return error
    if isinstance(error, GraphQLError):
        return StreamFailed([dict(client_error(error, request_id).formatted)])
    if isinstance(error, ClientError):
        return StreamFailed([_formatted_client_error(error)])
    masked = client_error(GraphQLError(str(error), original_error=error), request_id)
    return StreamFailed([dict(masked.formatted)])


def _formatted_client_error(error: ClientError) -> dict[str, Any]:
    return {"message": error.message, "extensions": {"code": error.code.value}}


__all__ = [
    "Started",
    "StreamFailed",
    "StreamingOperations",
    "Subscribe",
    "every_operation",
    "no_mutation",
]
