"""GraphQL over HTTP (the transport), following the GraphQL-over-HTTP spec.

- POST with `application/json`; GET for queries only (a mutation over GET is 405).
- Media type: `application/graphql-response+json` for clients that ask for it;
  `application/json` for those that ask for it, send no Accept, or accept anything.
  With graphql-response+json, a request that fails before execution (parse,
  validation, variables, cost) answers 400 and has no `data`; with application/json
  such results answer 200, as older clients expect.
- Request-level failures (bad JSON, no query, wrong content type, body too large)
  answer GraphQL-shaped JSON errors, never plain text.
- A browser asking for HTML gets GraphiQL.
- A request accepting `text/event-stream` is served over SSE (app/http/sse.py).

Everything between reading the request and writing the response (authentication,
limits and cost, rate limits, execution) is the admission pipeline's (pipeline.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
from graphql import OperationType
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from app.engine import ErrorCode
from app.http.errors import RequestError, logger
from app.http.params import GRAPHQL_RESPONSE, JSON, negotiate, read_params
from app.http.pipeline import Outcome, Pipeline, RequestState
from app.http.sse import EventStreams, wants_event_stream

# GraphiQL and its assets ship with the package (app/static/graphiql): no CDN needed.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
GRAPHIQL_PAGE = STATIC_DIR / "graphiql" / "index.html"


def _over_get(operation: OperationType) -> RequestError | None:
    """GET runs queries only: it must not change anything."""
    if operation is OperationType.QUERY:
        return None
    return RequestError(
        405, "Mutations must be sent with POST", ErrorCode.METHOD_NOT_ALLOWED, {"Allow": "POST"}
    )


def _over_post(operation: OperationType) -> RequestError | None:
    """POST runs queries and mutations; subscriptions have their own transports."""
    if operation is not OperationType.SUBSCRIPTION:
        return None
    return RequestError(
        400,
        "Subscriptions are served over WebSocket (graphql-transport-ws, graphql-ws) and "
        "Server-Sent Events (Accept: text/event-stream), not plain HTTP",
        ErrorCode.BAD_REQUEST,
    )


def error_response(error: RequestError, media_type: str) -> Response:
    """A request-level failure as a GraphQL error body."""
    return Response(
        orjson.dumps({"errors": [error.formatted]}),
        status_code=error.status,
        media_type=media_type,
        headers=error.headers,
    )


def _wants_html(request: Request) -> bool:
    args = request.query_params
    return (
        request.method == "GET"
        and "query" not in args
        and "documentId" not in args
        and "extensions" not in args  # a hash-only (APQ) GET
        and "text/html" in request.headers.get("accept", "")
    )


class GraphQLEndpoint:
    """The /graphql route: negotiation, parameters, GraphiQL; the pipeline does the rest."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        max_body_bytes: int,
        body_timeout_seconds: float | None = None,
        graphiql: bool = True,
        event_streams: EventStreams | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.event_streams = event_streams
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.graphiql_html = GRAPHIQL_PAGE.read_text(encoding="utf-8") if graphiql else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route's ASGI app: Starlette calls an endpoint object as it is (no wrapper)."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Handle one HTTP request to /graphql."""
        if self.graphiql_html is not None and _wants_html(request):
            return HTMLResponse(self.graphiql_html)
        accept = request.headers.get("accept")
        streams = self.event_streams if wants_event_stream(accept) else None
        # Request-level errors of an event-stream request are answered as JSON.
        media_type = JSON if streams is not None else negotiate(accept)
        try:
            if media_type is None:
                raise RequestError(
                    406, f"Accept {GRAPHQL_RESPONSE} or {JSON}", ErrorCode.NOT_ACCEPTABLE
                )
            if request.method not in ("GET", "POST"):
                raise RequestError(
                    405,
                    "GraphQL is served over GET and POST only",
                    ErrorCode.METHOD_NOT_ALLOWED,
                    {"Allow": "GET, POST"},
                )
            params = await read_params(request, self.max_body_bytes, self.body_timeout_seconds)
        except RequestError as error:
            return error_response(error, media_type or JSON)
        except ClientDisconnect:
            # Nobody is left to answer: one INFO line, not an error with a traceback.
            logger.info(
                "client disconnected before sending its whole body",
                request_id=request_id_of(request),
            )
            return Response(status_code=499)
        if streams is not None:
            return await streams.respond(request, params, request_id_of(request))
        check = _over_get if request.method == "GET" else _over_post
        outcome = await self.pipeline.run(
            RequestState(request, params, request_id_of(request), check)
        )
        return _response(outcome, media_type)


def _response(outcome: Outcome, media_type: str) -> Response:
    status = outcome.status
    if status is None:
        # graphql-response+json: a request that never executed is a client error (400).
        status = 400 if not outcome.executed and media_type == GRAPHQL_RESPONSE else 200
    body = outcome.body
    return Response(
        body if isinstance(body, bytes) else orjson.dumps(body),
        status_code=status,
        media_type=media_type,
        headers=outcome.headers,
    )


def request_id_of(connection: HTTPConnection) -> str:
    """The request id set by ResponseHeadersMiddleware (or a fresh one)."""
    return str(connection.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)


__all__ = ["STATIC_DIR", "GraphQLEndpoint", "error_response", "negotiate", "request_id_of"]
