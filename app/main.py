"""create_app(settings) -> the Starlette application: routes, middleware, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import HTTPConnection
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.context import Context
from app.db import Database, count_statements
from app.engine import CostModel, GraphQLExecutor, Limits, validation_rules
from app.http.admission import Admission, RefuseNul
from app.http.graphql import STATIC_DIR, GraphQLEndpoint, request_id_of
from app.http.health import Check, Readiness, health
from app.http.middleware import InternalErrorMiddleware, ResponseHeadersMiddleware
from app.http.oauth import TokenEndpoint
from app.http.pipeline import Pipeline, Step
from app.http.response_cache import ResponseCache
from app.http.steps import Authenticate, Execute, LimitsAndCost, RateLimit, Refund
from app.platform.caching import build_caching
from app.platform.passwords import password_hasher
from app.platform.ratelimit import Budget, Budgets, build_rate_limiter, redis_client_from_settings
from app.platform.tokens import TokenService
from app.schema import build_schema
from app.services.auth import Authenticator
from app.services.partners import grant_client_credentials, oauth_throttle
from app.settings import Environment, Settings


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app; engines are opened in the lifespan and closed after it."""
    db = Database.from_settings(settings)
    schema = build_schema()
    executor = GraphQLExecutor(
        schema,
        cache_size=settings.document_cache_size,
        cache_bytes=settings.document_cache_bytes,
        max_cached_document_bytes=settings.max_cached_document_bytes,
        extra_rules=validation_rules(
            Limits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_directives=settings.max_directives,
                max_tokens=settings.max_tokens,
                introspection=settings.introspection_enabled,
            )
        ),
        max_tokens=settings.max_tokens,
        # Suggestions ("Did you mean ...?") reveal the schema: shown only where introspection is.
        hide_suggestions=not settings.introspection_enabled,
        cost_model=CostModel(
            default_page_size=settings.default_page_size, max_page_size=settings.max_page_size
        ),
    )
    redis = redis_client_from_settings(settings)
    caching = build_caching(settings, redis)
    db.after_commit = caching.after_commit

    authenticator = Authenticator(db, TokenService(settings))
    rate_limiter = build_rate_limiter(settings, redis)
    budgets = Budgets.from_settings(settings)

    async def make_context(connection: HTTPConnection) -> Context:
        viewer = await authenticator.viewer_for(connection.headers.get("authorization"))
        return Context(
            db=db,
            settings=settings,
            request_id=request_id_of(connection),
            rate_limiter=rate_limiter,
            viewer=viewer,
            client_ip=connection.client.host if connection.client else "-",
            caching=caching,
        )

    def budget_for(context: Context) -> Budget:
        return budgets.for_caller(context.viewer, context.client_ip)

    max_cost = settings.max_query_cost

    admission_charge = settings.admission_charge

    def max_cost_for(context: Context) -> int:
        # A cost over the caller's bucket (less the admission charge) could never be served.
        return min(max_cost, max(0, budget_for(context).capacity - admission_charge))

    limiting = settings.rate_limiting_enabled
    # Authentication first: the admission charge is then taken from the caller's own bucket
    # (a token's or the IP's); a bad token is refused before it costs anything.
    steps: list[Step] = [
        Authenticate(make_context),
        Admission(
            max_query_bytes=settings.max_query_bytes,
            cached=executor.documents,
            limiter=rate_limiter if limiting else None,
            budget_for=budget_for,
            charge=admission_charge,
            per_kb=settings.parse_charge_per_kb,
        ),
        RefuseNul(),
        LimitsAndCost(executor, max_cost_for if limiting else lambda context: max_cost),
    ]
    if limiting:
        steps += [RateLimit(rate_limiter, budget_for), Refund(rate_limiter)]
    steps.append(
        ResponseCache(
            executor,
            caching.cache,
            view_of=public_view,
            read_tags_of=lambda context: context.loaders.read_tags,
            stats_of=lambda context: context.cache_stats,
            debug=settings.debug_enabled,
        )
    )
    steps.append(
        Execute(
            executor,
            timeout_seconds=settings.operation_timeout_seconds,
            # extensions.debug.sqlStatements: counted by the data layer, around execution only.
            count_statements=count_statements if settings.debug_enabled else None,
        )
    )
    graphql = GraphQLEndpoint(
        Pipeline(steps),
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        graphiql=settings.env is Environment.DEVELOPMENT or bool(settings.debug),
    )

    oauth_token = TokenEndpoint(
        partial(
            grant_client_credentials,
            db,
            tokens=TokenService(settings),
            hasher=password_hasher(settings.password_hash_concurrency),
        ),
        throttle=partial(oauth_throttle, rate_limiter, settings),
    )

    readiness_checks: dict[str, Check] = {"database": db.ping}
    if redis is not None:
        readiness_checks["redis"] = caching.redis_check or redis.ping
    # Without Redis the server answers from the database: degraded, still in rotation.
    readiness = Readiness(readiness_checks, optional=frozenset({"redis"}))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await db.dispose()
            if redis is not None:
                await redis.aclose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/health", health, methods=["GET"]),
            Route("/readyz", readiness.handle, methods=["GET"]),
            Route("/oauth/token", oauth_token.handle, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(ResponseHeadersMiddleware, hsts=settings.env is Environment.PRODUCTION),
            *_cors(settings),
            Middleware(InternalErrorMiddleware),
            Middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.executor = executor
    app.state.schema = schema
    app.state.settings = settings
    app.state.caching = caching
    return app


def public_view(context: Context) -> str | None:
    """Which shared responses a caller may be served: staff (unpublished products) none."""
    viewer = context.viewer
    if viewer.is_staff:
        return None
    if viewer.partner_id is not None:  # a partner's scopes decide what it may select
        return "scopes:" + ",".join(sorted(viewer.scopes))
    return "public"


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for the configured browser origins (none: no CORS headers at all)."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    ]
