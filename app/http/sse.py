"""GraphQL over Server-Sent Events: the graphql-sse protocol, distinct connections mode.

A request to /graphql that accepts `text/event-stream` (and not a GraphQL JSON media type
first) gets its results as events on one response: `next` with each result, then
`complete` (github.com/enisdenjo/graphql-sse, PROTOCOL.md). POST runs any operation, GET
queries and subscriptions. The caller authenticates with the `Authorization` header, and
the operation goes through the same streaming pipeline as over WebSocket. A request
refused before it runs (401, 429, ...) is answered as over HTTP, with its status and a
JSON body; an operation that runs, or fails validation, streams. While a subscription is
quiet a comment line keeps the connection alive through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.http.pipeline import GraphQLParams
from app.http.subscriptions import Started, StreamFailed, StreamingOperations, every_operation
from app.http.subscriptions import no_mutation as queries_and_subscriptions

EVENT_STREAM = "text/event-stream"
# Proxies must pass events on as they come (nginx reads X-Accel-Buffering).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_event_stream(accept: str | None) -> bool:
    """Whether the client asks for an event stream (a media type it lists before JSON)."""
    if not accept or EVENT_STREAM not in accept:
        return False
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == EVENT_STREAM or "json" not in accept


class EventStreams:
    """Serves GraphQL requests that asked for an event stream."""

    def __init__(self, operations: StreamingOperations, *, keep_alive_seconds: float) -> None:
        self.operations = operations
        self.keep_alive_seconds = keep_alive_seconds
        self._closing = asyncio.Event()

    def close_all(self) -> None:
        """End every open stream without `complete` (the server is going away): clients
        reconnect, to another instance."""
        self._closing.set()

    async def respond(self, request: Request, params: GraphQLParams, request_id: str) -> Response:
        """Admit the operation; stream its results, or answer its refusal."""
        check = every_operation if request.method == "POST" else queries_and_subscriptions
        started = await self.operations.start(request, params, request_id, check)
        if started.stream is None and started.status is not None:
            return JSONResponse(started.result, status_code=started.status)
        return StreamingResponse(
            self._events(started), media_type=EVENT_STREAM, headers=STREAM_HEADERS
        )

    async def _events(self, started: Started) -> AsyncIterator[bytes]:
        if started.stream is None:
            yield _event("next", started.result)
            yield _event("complete", None)
            return
        stream = started.stream
        # One pending read at a time, kept across keep-alives: cancelling a read would
        # throw into the subscription and end it.
        pending: asyncio.Future[Any] | None = None
        closing: asyncio.Future[Any] = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(stream))
                done, _ = await asyncio.wait(
                    {pending, closing},
                    timeout=self.keep_alive_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if closing in done:
                    return  # no `complete`: the subscription is not over, this server is
                if not done:
                    yield b":\n\n"  # a comment: keeps the connection open
                    continue
                read, pending = pending, None
                try:
                    payload = read.result()
                except StopAsyncIteration:
                    break
                yield b"event: next\ndata: " + payload + b"\n\n"
        except StreamFailed as failed:
            yield _event("next", {"errors": failed.errors})
        finally:
            closing.cancel()
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await started.close()
        yield _event("complete", None)


def _event(name: str, data: Any) -> bytes:
    body = b"" if data is None else orjson.dumps(data)
    return b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"


__all__ = ["EVENT_STREAM", "EventStreams", "wants_event_stream"]
