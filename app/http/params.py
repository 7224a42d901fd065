"""Reading a GraphQL-over-HTTP request: the media type to answer with, and its parameters."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from app.engine import ErrorCode
from app.http.errors import RequestError
from app.http.pipeline import GraphQLParams

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_ACCEPTABLE = (GRAPHQL_RESPONSE, JSON)
# How exactly an Accept entry names a type: an exact name beats application/*, which beats */*.
_EXACT, _SUBTYPE_WILDCARD, _WILDCARD = 2, 1, 0


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither of ours."""
    if accept is not None and len(accept) <= 200:  # long values are not kept (memory)
        return _negotiate_remembered(accept)
    return _negotiate(accept)


@functools.lru_cache(maxsize=256)  # clients send a handful of Accept values, again and again
def _negotiate_remembered(accept: str) -> str | None:
    return _negotiate(accept)


def _negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither of ours.

    The GraphQL-over-HTTP spec: with no Accept, or only wildcards, the answer is
    `application/json` (what every client reads); `application/graphql-response+json`
    is for clients that name it.
    """
    if not accept or not accept.strip():
        return JSON
    best: tuple[float, int, int, str] | None = None
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
        if media in _ACCEPTABLE:
            option = (quality, _EXACT, -_ACCEPTABLE.index(media), media)
        elif media == "application/*":
            option = (quality, _SUBTYPE_WILDCARD, 0, JSON)
        elif media == "*/*":
            option = (quality, _WILDCARD, 0, JSON)
        else:
            continue
        if best is None or option > best:
            best = option
    return best[3] if best else None


def _object_or_null(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is not None and not isinstance(value, dict):
        raise RequestError(400, f"`{name}` must be an object or null", ErrorCode.BAD_REQUEST)
    return value


def params_from(data: object) -> GraphQLParams:
    """GraphQLParams from a decoded request (JSON body, or GET parameters)."""
    if isinstance(data, list):
        raise RequestError(
            400,
            "Batched requests are not supported: send one operation per request",
            ErrorCode.BAD_REQUEST,
        )
    if not isinstance(data, dict):
        raise RequestError(400, "The request body must be a JSON object", ErrorCode.BAD_REQUEST)
    query = data.get("query")
    if query is not None and not isinstance(query, str):
        raise RequestError(400, "`query` must be a string", ErrorCode.BAD_REQUEST)
    document_id = data.get("documentId")
    if document_id is not None and not isinstance(document_id, str):
        raise RequestError(400, "`documentId` must be a string", ErrorCode.BAD_REQUEST)
    variables = _object_or_null(data, "variables")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, "`operationName` must be a string or null", ErrorCode.BAD_REQUEST)
    extensions = _object_or_null(data, "extensions")
    # A persisted document (its id, or an APQ hash) stands for the query text: the persisted
    # document step (app/http/persisted.py) looks it up.
    if not query and not document_id and not (extensions and "persistedQuery" in extensions):
        raise RequestError(400, "No GraphQL query found in the request", ErrorCode.BAD_REQUEST)
    return GraphQLParams(
        query or "", variables, operation_name or None, extensions, document_id or None
    )


def _json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(
            400, f"The `{name}` parameter is not valid JSON", ErrorCode.BAD_REQUEST
        ) from None


async def _read_body(request: Request, limit: int, seconds: float | None) -> bytes:
    # A body trickling in (one byte a second) must not hold the worker: a deadline for all of it.
    try:
        async with asyncio.timeout(seconds):
            return await _read_limited(request, limit)
    except TimeoutError:
        raise RequestError(
            408,
            f"The request body did not arrive within {seconds:g} s",
            ErrorCode.TIMEOUT,
            {"Connection": "close"},
        ) from None


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, f"The request body is larger than {limit} bytes", ErrorCode.PAYLOAD_TOO_LARGE
        )
    # The ASGI messages themselves: Starlette's request.stream() is an async generator,
    # a measurable share of a response-cache hit.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413, f"The request body is larger than {limit} bytes", ErrorCode.PAYLOAD_TOO_LARGE
            )
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_params(
    request: Request, max_body_bytes: int, body_timeout: float | None = None
) -> GraphQLParams:
    """Parse a GET query string or a POST JSON body into GraphQLParams.

    starlette's ClientDisconnect goes on when the client leaves mid-body.
    """
    if request.method == "GET":
        args = request.query_params
        return params_from(
            {
                "query": args.get("query"),
                "documentId": args.get("documentId"),
                "variables": _json_param(args.get("variables"), "variables"),
                "operationName": args.get("operationName"),
                "extensions": _json_param(args.get("extensions"), "extensions"),
            }
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise RequestError(
            415,
            "Send the request as `Content-Type: application/json`",
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    body = await _read_body(request, max_body_bytes, body_timeout)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(
            400, "The request body is not valid JSON", ErrorCode.BAD_REQUEST
        ) from None
    return params_from(data)
