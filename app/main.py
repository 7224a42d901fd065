"""create_app(settings) -> the Starlette application: routes, middleware, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.context import Context
from app.db import Database
from app.platform.graphql_execution import GraphQLExecutor
from app.platform.graphql_http import STATIC_DIR, GraphQLEndpoint, request_id_of
from app.platform.middleware import RequestIdMiddleware
from app.platform.ratelimit import MemoryRateLimiter
from app.platform.tokens import TokenService
from app.schema import build_schema
from app.services.auth import Authenticator
from app.settings import Environment, Settings


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app; engines are opened in the lifespan and closed after it."""
    db = Database.from_settings(settings)
    schema = build_schema()
    executor = GraphQLExecutor(schema, cache_size=settings.document_cache_size)

    authenticator = Authenticator(db, TokenService(settings))
    rate_limiter = MemoryRateLimiter()

    async def make_context(request: Request) -> Context:
        viewer = await authenticator.viewer_for(request.headers.get("authorization"))
        return Context(
            db=db,
            settings=settings,
            request_id=request_id_of(request),
            rate_limiter=rate_limiter,
            viewer=viewer,
            client_ip=request.client.host if request.client else "-",
        )

    graphql = GraphQLEndpoint(
        executor,
        context_factory=make_context,
        max_body_bytes=settings.max_body_bytes,
        debug=settings.debug_enabled,
        graphiql=settings.env is Environment.DEVELOPMENT or bool(settings.debug),
    )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await db.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/health", health, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.schema = schema
    app.state.settings = settings
    return app
