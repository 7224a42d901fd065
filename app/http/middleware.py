"""Pure ASGI middleware: request ids, the headers every response carries, and the JSON 500."""

from __future__ import annotations

import asyncio
import itertools
import os
import re

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.errors import internal_error_bytes, log_unexpected, stray_cancellation

# scope["state"] key: ResponseHeadersMiddleware sets it when a response starts going out.
RESPONSE_STARTED = "response_started"

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# GraphiQL (served at GET /graphql) loads its scripts and styles from /static and injects
# styles at runtime; fonts and icons are data: URLs in its stylesheet.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Everything else is data: it may load nothing and be framed by no one.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=63072000; includeSubDomains"


class ResponseHeadersMiddleware:
    """Tags each request with an id and adds the headers every response carries.

    The id is a sane `X-Request-ID` from the client or a fresh unique one; it goes into
    `scope["state"]["request_id"]` (logs, masked errors) and back out as `X-Request-ID`.
    Security headers are added as the response starts (HSTS only when `hsts` is on);
    a header the application already set is left as it is. It also marks in
    `scope["state"]` that the response has started (InternalErrorMiddleware reads it).
    One middleware, one `send` wrapper: this runs on every request.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        common = [
            # Any response may be gzipped for a client that asks (GZipOnRequest): caches
            # must keep the encodings apart.
            (b"vary", b"Accept-Encoding"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if hsts:
            common.append((b"strict-transport-security", HSTS.encode()))
        csp = b"content-security-policy"
        self._page_headers = [*common, (csp, GRAPHIQL_CSP.encode())]
        self._api_headers = [*common, (csp, API_CSP.encode())]
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the request, then add the headers as its response starts."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        text = given.decode("latin-1") if given else ""
        if not (text and _VALID_REQUEST_ID.match(text)):
            # Unique, not secret: a random prefix per process and a counter (no system call).
            text = f"{self._id_prefix}{next(self._id_counter):016x}"
        request_id = text
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tag = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = set()
                html = False
                for name, value in headers:
                    name = name.lower()
                    present.add(name)
                    if name == b"content-type" and value.startswith(b"text/html"):
                        html = True
                for header in self._page_headers if html else self._api_headers:
                    if header[0] not in present:
                        headers.append(header)
                headers.append(tag)
                message["headers"] = headers
                state[RESPONSE_STARTED] = True
            await send(message)

        await self.app(scope, receive, send_with_headers)


class InternalErrorMiddleware:
    """Answers an exception that escaped the app with the masked GraphQL-shaped JSON 500.

    Starlette's own ServerErrorMiddleware answers plain text and re-raises, after which
    uvicorn drops the keep-alive connection without `Connection: close`. This one logs the
    error in full with the request id, answers, and returns: the connection stays usable.
    A response that had already started cannot be replaced; then the error goes on and
    the server closes the connection, as it should for a response cut short.

    It sits inside ResponseHeadersMiddleware (which gives it the request id and tells it
    whether a response started: no `send` wrapper of its own) and inside CORS (so a
    browser can read the 500).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an escaped exception into a JSON 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError as error:
            if not stray_cancellation():  # this request is being cancelled: let it be
                raise
            await self._answer(scope, send, error)
        except Exception as error:
            await self._answer(scope, send, error)

    @staticmethod
    async def _answer(scope: Scope, send: Send, error: BaseException) -> None:
        state = scope.get("state", {})
        request_id = str(state.get("request_id") or os.urandom(16).hex())
        log_unexpected(
            error, request_id=request_id, where=f"{scope.get('method')} {scope.get('path')}"
        )
        if state.get(RESPONSE_STARTED):
            raise error
        body = internal_error_bytes(request_id)
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class GZipOnRequest:
    """Starlette's GZipMiddleware for clients that accept gzip; no wrapper for the others.

    Starlette wraps every response, also those it will not compress, to add `Vary`;
    ResponseHeadersMiddleware adds `Vary: Accept-Encoding` to every response instead, so a
    client that does not ask for gzip costs nothing here.
    """

    def __init__(self, app: ASGIApp, *, minimum_size: int) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compress when the request accepts gzip; else pass the response through."""
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"accept-encoding" and b"gzip" in value.lower():
                    await self.gzip(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class DirectRouteApp(Starlette):
    """Starlette, with one hot route's GET and POST sent straight to its endpoint.

    `direct(path, endpoint)` wraps the endpoint in the app's own middleware (the same
    classes and options, in the same order) and skips what else Starlette puts around
    every request: ServerErrorMiddleware (InternalErrorMiddleware answers 500s inside the
    middleware), ExceptionMiddleware (the endpoint raises no HTTPException) and the
    router's matching. On a response-cache hit those were ~6% of the CPU, three `send`
    wrappers among them. Every other path, method and scope type goes through Starlette.
    """

    _direct_path: str | None = None
    _direct_stack: ASGIApp | None = None

    def direct(self, path: str, endpoint: ASGIApp) -> None:
        """Serve GET and POST on `path` (no root path) through the middleware only."""
        stack = endpoint
        for cls, args, kwargs in reversed(self.user_middleware):
            stack = cls(stack, *args, **kwargs)
        self._direct_path, self._direct_stack = path, stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The direct route's requests straight through; everything else as Starlette does."""
        stack = self._direct_stack
        if (
            stack is not None
            and scope["type"] == "http"
            and scope["path"] == self._direct_path
            and scope["method"] in ("GET", "POST")
            and not scope.get("root_path")
        ):
            scope["app"] = self
            scope.setdefault("router", self.router)  # what Starlette's router would set
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
