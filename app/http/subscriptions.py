"""Operations over the streaming transports (WebSocket, SSE): the pipeline, then a stream.

The streaming transports take every operation through the same admission pipeline as
HTTP (authentication, persisted documents, limits and cost, partner scopes, the rate
limit), with `Subscribe` as its innermost step: a subscription starts there and its
results stream out one per event; a query or mutation runs as over HTTP and has one
result. `StreamingOperations.start` gives the transport either.

A subscription is charged its requested cost once, when it starts; its events are not
charged again (they run the same selection, bounded by that cost).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.requests import HTTPConnection

from app.engine import ClientError, ErrorCode, GraphQLExecutor, client_error
from app.http.errors import RequestError
from app.http.pipeline import GraphQLParams, Next, Pipeline, RequestState
from app.http.steps import Execute


class Subscribe:
    """The innermost step of the streaming transports: start a subscription, or execute."""

    def __init__(self, executor: GraphQLExecutor, execute: Execute) -> None:
        self.executor = executor
        self.execute = execute

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Set `state.stream` for a subscription; run anything else as `Execute` does."""
        prepared = state.prepared
        assert prepared is not None, "limits and cost runs first"
        params = state.params
        if prepared.operation_type(params.operation_name) is not OperationType.SUBSCRIPTION:
            await self.execute(state, call_next)
            return
        started = await self.executor.subscribe(
            prepared,
            context=state.context,
            variables=params.variables,
            operation_name=params.operation_name,
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


class StreamFailed(Exception):
    """A started subscription ended with errors (its source failed or refused)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "subscription failed")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Started:
    """What an operation gave: one result (`status` set for a refusal), or a stream."""

    result: Mapping[str, Any] | None
    status: int | None
    stream: AsyncIterator[dict[str, Any]] | None


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
        return Started(None, None, _payloads(state.stream, request_id))


async def _payloads(
    stream: AsyncIterator[ExecutionResult], request_id: str
) -> AsyncIterator[dict[str, Any]]:
    """Each event's result as its JSON payload; StreamFailed when the source fails."""
    try:
        async for result in stream:
            payload: dict[str, Any] = {"data": result.data}
            if result.errors:
                payload["errors"] = [
                    client_error(error, request_id).formatted for error in result.errors
                ]
            yield payload
    except GraphQLError as error:
        raise StreamFailed([dict(client_error(error, request_id).formatted)]) from None
    except ClientError as error:
        raise StreamFailed([_formatted_client_error(error)]) from None
    except Exception as error:
        masked = client_error(GraphQLError(str(error), original_error=error), request_id)
        raise StreamFailed([dict(masked.formatted)]) from None
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


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
