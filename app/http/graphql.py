"""GraphQL over HTTP, following the GraphQL-over-HTTP spec.

- POST with `application/json`; GET for queries only (a mutation over GET is 405).
- `application/graphql-response+json` is the default media type (also when no
  Accept is sent); with it, a request that fails before execution (parse,
  validation, variables) answers 400 and has no `data`. With `application/json`
  such results answer 200, as older clients expect.
- Request-level failures (bad JSON, no query, wrong content type, body too large)
  answer GraphQL-shaped JSON errors, never plain text.
- A browser asking for HTML gets GraphiQL.
- Before execution, the operation's cost is checked against the maximum and reserved
  from the caller's leaky bucket (429 THROTTLED with Retry-After when it does not fit);
  after it, the difference to the actual cost goes back. The operation runs under a
  wall-clock timeout (TIMEOUT). Responses that executed or were throttled carry
  `extensions.cost`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.db import count_statements
from app.engine import too_complex
from app.engine.cost import CostPlan
from app.engine.errors import ErrorCode, client_error
from app.engine.executor import (
    GraphQLExecutor,
    OperationNotFound,
    OperationTimeout,
    PreparedDocument,
)
from app.platform.errors import Unauthenticated
from app.platform.ratelimit import BucketState, Budget, RateLimiter

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_ACCEPTABLE = (GRAPHQL_RESPONSE, JSON)
# GraphiQL and its assets ship with the package (app/static/graphiql): no CDN needed.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
GRAPHIQL_PAGE = STATIC_DIR / "graphiql" / "index.html"


class RequestError(Exception):
    """The HTTP request itself is unusable; answered with `status` and a GraphQL error body."""

    def __init__(
        self, status: int, message: str, code: ErrorCode, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class GraphQLParams:
    """What the client asked to run."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither of ours."""
    if not accept or not accept.strip():
        return GRAPHQL_RESPONSE
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        media = media.lower()
        for rank, candidate in enumerate(_ACCEPTABLE):
            if media in (candidate, "*/*", "application/*"):
                option = (quality, -rank, candidate)
                if best is None or option > best:
                    best = option
    return best[2] if best else None


def _params_from(data: object) -> GraphQLParams:
    if isinstance(data, list):
        raise RequestError(
            400,
            "Batched requests are not supported: send one operation per request",
            ErrorCode.BAD_REQUEST,
        )
    if not isinstance(data, dict):
        raise RequestError(400, "The request body must be a JSON object", ErrorCode.BAD_REQUEST)
    query = data.get("query")
    if query is None or query == "":
        raise RequestError(400, "No GraphQL query found in the request", ErrorCode.BAD_REQUEST)
    if not isinstance(query, str):
        raise RequestError(400, "`query` must be a string", ErrorCode.BAD_REQUEST)
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "`variables` must be an object or null", ErrorCode.BAD_REQUEST)
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, "`operationName` must be a string or null", ErrorCode.BAD_REQUEST)
    return GraphQLParams(query=query, variables=variables, operation_name=operation_name or None)


def _json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(
            400, f"The `{name}` parameter is not valid JSON", ErrorCode.BAD_REQUEST
        ) from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, f"The request body is larger than {limit} bytes", ErrorCode.PAYLOAD_TOO_LARGE
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413, f"The request body is larger than {limit} bytes", ErrorCode.PAYLOAD_TOO_LARGE
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_params(request: Request, max_body_bytes: int) -> GraphQLParams:
    """Parse a GET query string or a POST JSON body into GraphQLParams."""
    if request.method == "GET":
        args = request.query_params
        return _params_from(
            {
                "query": args.get("query"),
                "variables": _json_param(args.get("variables"), "variables"),
                "operationName": args.get("operationName"),
            }
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise RequestError(
            415,
            "Send the request as `Content-Type: application/json`",
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    body = await _read_body(request, max_body_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(
            400, "The request body is not valid JSON", ErrorCode.BAD_REQUEST
        ) from None
    return _params_from(data)


def error_response(error: RequestError, media_type: str) -> Response:
    """A request-level failure as a GraphQL error body."""
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code.value}}]}
    return Response(
        orjson.dumps(body), status_code=error.status, media_type=media_type, headers=error.headers
    )


def _wants_html(request: Request) -> bool:
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def cost_extension(requested: int, actual: int, state: BucketState | None) -> dict[str, Any]:
    """The `extensions.cost` object of a response."""
    cost: dict[str, Any] = {"requestedQueryCost": requested, "actualQueryCost": actual}
    if state is not None:
        cost["throttleStatus"] = {
            "maximumAvailable": state.capacity,
            "currentlyAvailable": max(0, math.floor(state.available)),
            "restoreRate": state.restore_rate,
        }
    return cost


class GraphQLEndpoint:
    """The /graphql route: negotiation, parameters, cost and budget, execution, status codes."""

    def __init__(
        self,
        executor: GraphQLExecutor,
        *,
        context_factory: Callable[[Request], Awaitable[Any]],
        max_body_bytes: int,
        debug: bool,
        rate_limiter: RateLimiter | None,
        budget_for: Callable[[Any], Budget],
        max_query_cost: int,
        timeout_seconds: float,
        graphiql: bool = True,
    ) -> None:
        self.executor = executor
        self.context_factory = context_factory
        self.max_body_bytes = max_body_bytes
        self.debug = debug
        self.rate_limiter = rate_limiter
        self.budget_for = budget_for
        self.max_query_cost = max_query_cost
        self.timeout_seconds = timeout_seconds
        self.graphiql_html = GRAPHIQL_PAGE.read_text(encoding="utf-8") if graphiql else None

    async def handle(self, request: Request) -> Response:
        """Handle one HTTP request to /graphql."""
        if self.graphiql_html is not None and _wants_html(request):
            return HTMLResponse(self.graphiql_html)
        media_type = negotiate(request.headers.get("accept"))
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
            params = await read_params(request, self.max_body_bytes)
            return await self._execute(request, params, media_type)
        except RequestError as error:
            return error_response(error, media_type or JSON)

    async def _execute(self, request: Request, params: GraphQLParams, media_type: str) -> Response:
        started = time.perf_counter()
        request_id = request_id_of(request)
        prepared = self.executor.prepare(params.query)
        if prepared.operations:
            # Which operation runs, and whether this method may run it, comes before
            # validation errors: a mutation over GET is 405 even if it is also invalid.
            try:
                operation_type = prepared.operation_type(params.operation_name)
            except OperationNotFound as error:
                raise RequestError(400, str(error), ErrorCode.BAD_REQUEST) from None
            if request.method == "GET" and operation_type is not OperationType.QUERY:
                raise RequestError(
                    405,
                    "Mutations must be sent with POST",
                    ErrorCode.METHOD_NOT_ALLOWED,
                    {"Allow": "POST"},
                )
            if operation_type is OperationType.SUBSCRIPTION:
                raise RequestError(
                    400, "Subscriptions are served over WebSocket, not HTTP", ErrorCode.BAD_REQUEST
                )
        if prepared.errors:
            errors = [client_error(error, request_id) for error in prepared.errors]
            return self._respond(errors, None, media_type, failed_before_execution=True)
        try:
            context = await self.context_factory(request)
        except Unauthenticated as error:
            raise RequestError(
                401,
                str(error),
                ErrorCode.UNAUTHENTICATED,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        plan = prepared.cost_plan(params.operation_name)
        requested = plan.requested(params.variables)
        budget = self.budget_for(context)
        maximum = self.max_query_cost
        if self.rate_limiter is not None:  # a cost over the capacity could never be served
            maximum = min(maximum, budget.capacity)
        if requested > maximum:
            over = too_complex(
                f"The query costs {requested} points; the maximum is {maximum}. "
                "Ask for smaller pages or fewer nested connections."
            )
            return self._respond(
                [over],
                None,
                media_type,
                failed_before_execution=True,
                extensions={"cost": cost_extension(requested, 0, None)},
            )
        limiter = self.rate_limiter
        state: BucketState | None = None
        if limiter is not None:
            state = await limiter.take(
                budget.key, requested, capacity=budget.capacity, restore_rate=budget.restore_rate
            )
            if not state.allowed:
                return self._throttled(requested, state, media_type)
        with count_statements() as statements:
            result, actual, timed_out = await self._run(prepared, context, params, plan, requested)
        if limiter is not None and actual != requested:
            state = await limiter.give_back(
                budget.key,
                requested - actual,
                capacity=budget.capacity,
                restore_rate=budget.restore_rate,
            )
        errors = [client_error(error, request_id) for error in result.errors or ()]
        # Variable coercion fails before execution: no path, no data.
        failed_before_execution = (
            not timed_out
            and bool(errors)
            and result.data is None
            and all(error.path is None for error in errors)
        )
        extensions: dict[str, Any] = {"cost": cost_extension(requested, actual, state)}
        if self.debug:
            extensions["debug"] = {
                "sqlStatements": statements.count,
                "durationMs": round((time.perf_counter() - started) * 1000, 2),
            }
        return self._respond(
            errors, result.data, media_type, failed_before_execution, extensions=extensions
        )

    async def _run(
        self,
        prepared: PreparedDocument,
        context: Any,
        params: GraphQLParams,
        plan: CostPlan,
        requested: int,
    ) -> tuple[ExecutionResult, int, bool]:
        """Execute under the timeout: the result, its actual cost, whether it timed out.

        A stopped operation costs what was requested: its work was done.
        """
        try:
            result = await self.executor.execute(
                prepared,
                context=context,
                variables=params.variables,
                operation_name=params.operation_name,
                time_limit=self.timeout_seconds,
            )
        except OperationTimeout:
            stopped = GraphQLError(
                f"The operation did not finish within {self.timeout_seconds:g} s and was "
                "stopped; ask for less data",
                extensions={"code": ErrorCode.TIMEOUT.value},
            )
            return ExecutionResult(data=None, errors=[stopped]), requested, True
        return result, plan.actual(result.data), False

    def _throttled(self, requested: int, state: BucketState, media_type: str) -> Response:
        wait = state.retry_after
        if not math.isfinite(wait):  # cannot happen: costs over the capacity are refused first
            wait = state.capacity / state.restore_rate
        retry_after = max(1, math.ceil(wait))
        message = (
            f"Throttled: the query costs {requested} points and "
            f"{max(0, math.floor(state.available))} of {state.capacity} are available, "
            f"restoring {state.restore_rate:g} per second. Retry in {retry_after} s."
        )
        body = {
            "errors": [{"message": message, "extensions": {"code": ErrorCode.THROTTLED.value}}],
            "extensions": {"cost": cost_extension(requested, 0, state)},
        }
        return Response(
            orjson.dumps(body),
            status_code=429,
            media_type=media_type,
            headers={"Retry-After": str(retry_after)},
        )

    def _respond(
        self,
        errors: list[GraphQLError],
        data: dict[str, Any] | None,
        media_type: str,
        failed_before_execution: bool,
        *,
        extensions: dict[str, Any] | None = None,
    ) -> Response:
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [error.formatted for error in errors]
        if not failed_before_execution:
            body["data"] = data
        if extensions:
            body["extensions"] = extensions
        # graphql-response+json: a request that never executed is a client error (400).
        status = 400 if failed_before_execution and media_type == GRAPHQL_RESPONSE else 200
        return Response(orjson.dumps(body), status_code=status, media_type=media_type)


def request_id_of(request: Request) -> str:
    """The request id set by ResponseHeadersMiddleware (or a fresh one)."""
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)


__all__ = ["GraphQLEndpoint", "negotiate", "request_id_of"]
