"""create_app(settings) -> the Starlette application: routes, middleware, lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from strawberry.schema import Schema

from app.background import BackgroundJobs
from app.context import Context
from app.db import Database, count_statements
from app.db.outages import database_outage
from app.engine import CostModel, GraphQLExecutor, Limits, settle_unwinding, validation_rules
from app.http.admission import Admission, RefuseNul
from app.http.draining import Draining
from app.http.graphql import STATIC_DIR, GraphQLEndpoint, request_id_of
from app.http.health import Check, Readiness, health
from app.http.middleware import (
    DirectRouteApp,
    GZipOnRequest,
    InternalErrorMiddleware,
    ResponseHeadersMiddleware,
)
from app.http.oauth import TokenEndpoint
from app.http.persisted import AnswerUnresolved, Policy, ResolveDocument
from app.http.pipeline import Pipeline, Step
from app.http.response_cache import ResponseCache
from app.http.sse import EventStreams
from app.http.steps import (
    Authenticate,
    Execute,
    LimitsAndCost,
    PartnerScopes,
    RateLimit,
    Refund,
)
from app.http.subscriptions import StreamingOperations, Subscribe
from app.http.websocket import SocketLimits, WebSocketEndpoint
from app.platform.cache import FailoverTaggedCache, TaggedCache
from app.platform.caching import build_caching
from app.platform.charged_read import ChargedReader, RedisChargedReader, SequentialChargedReader
from app.platform.crypto import DataCipher
from app.platform.passwords import password_hasher
from app.platform.persisted_queries import build_persisted_query_store
from app.platform.ratelimit import (
    Budget,
    Budgets,
    RateLimiter,
    build_rate_limiter,
    redis_client_from_settings,
)
from app.platform.redis_pipe import RedisPipe, redis_pipe_from_settings
from app.platform.tokens import TokenService
from app.schema import build_schema
from app.schema.scopes import SCOPE_KEY
from app.services.auth import Authenticator
from app.services.documents import find_document
from app.services.partners import grant_client_credentials, oauth_throttle
from app.services.payments.gateway import NoGateway, PaymentGateway, SandboxGateway
from app.settings import Environment, Settings


def build_executor(settings: Settings, schema: Schema) -> GraphQLExecutor:
    """The engine with the settings' limits (also what trusted documents are checked by)."""
    return GraphQLExecutor(
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


def _charged_reader(
    settings: Settings, pipe: RedisPipe | None, limiter: RateLimiter, cache: TaggedCache | None
) -> ChargedReader | None:
    """How the rate limit reads a cached response with its take (None: no response cache)."""
    if cache is None:
        return None
    one_by_one = SequentialChargedReader(limiter, cache)
    if pipe is None or not isinstance(cache, FailoverTaggedCache):
        return one_by_one
    return RedisChargedReader(
        pipe,
        cache,
        bucket_prefix=settings.rate_limit_key_prefix,
        fallback=one_by_one,
        pause_seconds=settings.redis_failover_pause_seconds,
    )


def payment_gateway_for(settings: Settings) -> PaymentGateway:
    """The test gateway, unless production did not ask for it (or asked for none)."""
    chosen = settings.payment_gateway
    if chosen is None:
        chosen = "none" if settings.env is Environment.PRODUCTION else "test"
    return SandboxGateway() if chosen == "test" else NoGateway()


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app; engines are opened in the lifespan and closed after it."""
    db = Database.from_settings(settings)
    schema = build_schema()
    executor = build_executor(settings, schema)
    redis = redis_client_from_settings(settings)
    # The hot path's scripts (a response-cache hit) go down one multiplexed connection.
    pipe = redis_pipe_from_settings(settings)
    caching = build_caching(settings, redis)
    db.after_commit = caching.after_commit

    authenticator = Authenticator(db, TokenService(settings))
    rate_limiter = build_rate_limiter(settings, redis)
    gateway = payment_gateway_for(settings)
    jobs = BackgroundJobs(settings, db, gateway)  # the outbox relay (and in-process jobs)
    cipher = DataCipher.from_settings(settings)
    budgets = Budgets.from_settings(settings)

    async def make_context(connection: HTTPConnection) -> Context:
        viewer = await authenticator.viewer_for(connection.headers.get("authorization"))
        return Context(
            db=db,
            settings=settings,
            request_id=request_id_of(connection),
            rate_limiter=rate_limiter,
            gateway=gateway,
            cipher=cipher,
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

    def scopes_of(context: Context) -> frozenset[str] | None:
        viewer = context.viewer
        return viewer.scopes if viewer.partner_id is not None else None

    limiting = settings.rate_limiting_enabled
    # Authentication first: the admission charge is then taken from the caller's own bucket
    # (a token's or the IP's); a bad token is refused before it costs anything.
    steps: list[Step] = [
        Authenticate(make_context),
        _resolve_document(settings, db, redis, executor),
        Admission(
            max_query_bytes=settings.max_query_bytes,
            cached=executor.documents,
            limiter=rate_limiter if limiting else None,
            budget_for=budget_for,
            charge=admission_charge,
            per_kb=settings.parse_charge_per_kb,
            hold_refusal_seconds=settings.throttled_hold_seconds,
            defer_cached=limiting,
        ),
        AnswerUnresolved(),
        RefuseNul(),
        LimitsAndCost(executor, max_cost_for if limiting else lambda context: max_cost),
        # Before the rate limit: an operation refused for its scopes spends no points.
        PartnerScopes(executor, key=SCOPE_KEY, scopes_of=scopes_of),
    ]
    response_cache = ResponseCache(
        executor,
        caching.cache if settings.response_cache_enabled else None,
        view_of=public_view,
        read_tags_of=lambda context: context.loaders.read_tags,
        stats_of=lambda context: context.cache_stats,
        debug=settings.debug_enabled,
    )
    if limiting:
        rate_limit = RateLimit(
            rate_limiter,
            budget_for,
            lookup=response_cache.lookup,
            reader=_charged_reader(settings, pipe, rate_limiter, response_cache.cache),
            hold_refusal_seconds=settings.throttled_hold_seconds,
        )
        steps += [rate_limit, Refund(rate_limiter)]
    steps.append(response_cache)
    execute = Execute(
        executor,
        timeout_seconds=settings.operation_timeout_seconds,
        # extensions.debug.sqlStatements: counted by the data layer, around execution only.
        count_statements=count_statements if settings.debug_enabled else None,
    )
    steps.append(execute)
    # WebSocket and SSE: the same steps up to the rate limit, then a subscription starts
    # (or a query or mutation runs); no response cache.
    streaming_steps = [
        *steps[: steps.index(response_cache)],
        Subscribe(executor, execute, share_key_of=lambda context: context.viewer.sharing_key),
    ]
    if limiting:
        streaming_steps[streaming_steps.index(rate_limit)] = RateLimit(
            rate_limiter, budget_for, hold_refusal_seconds=settings.throttled_hold_seconds
        )
    streaming = StreamingOperations(
        Pipeline(
            streaming_steps,
            time_limit=settings.operation_timeout_seconds,
            translate=database_outage,
        )
    )

    async def identify(authorization: str | None, client_ip: str) -> tuple[str, float | None]:
        viewer = await authenticator.viewer_for(authorization)
        if viewer.partner_id is not None:
            return f"partner:{viewer.partner_id}", viewer.expires_at
        if viewer.user_id is not None:
            return f"user:{viewer.user_id}", viewer.expires_at
        return f"ip:{client_ip}", None

    websocket = WebSocketEndpoint(
        streaming,
        identify,
        SocketLimits(
            init_timeout_seconds=settings.ws_init_timeout_seconds,
            keep_alive_seconds=settings.stream_keep_alive_seconds,
            max_operations=settings.ws_max_operations,
            max_connections_per_viewer=settings.ws_max_connections_per_viewer,
            max_message_bytes=settings.max_body_bytes,
        ),
    )
    event_streams = EventStreams(streaming, keep_alive_seconds=settings.stream_keep_alive_seconds)
    graphql = GraphQLEndpoint(
        Pipeline(
            steps,
            time_limit=settings.operation_timeout_seconds,
            translate=database_outage,
        ),
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        graphiql=settings.env is Environment.DEVELOPMENT or bool(settings.debug),
        event_streams=event_streams,
    )

    oauth_token = TokenEndpoint(
        partial(
            grant_client_credentials,
            db,
            tokens=TokenService(settings),
            hasher=password_hasher(settings.password_hash_concurrency),
        ),
        throttle=partial(oauth_throttle, rate_limiter, settings),
        time_limit=settings.operation_timeout_seconds,
        translate=database_outage,
    )

    readiness_checks: dict[str, Check] = {"database": db.ping}
    if redis is not None:
        readiness_checks["redis"] = caching.redis_check or redis.ping
    # Without Redis the server answers from the database: degraded, still in rotation.
    # SIGTERM: not ready for shutdown_drain_seconds, then uvicorn's graceful shutdown.
    # Streams (WebSocket, SSE) are told to go away through draining.on_drain.
    draining = Draining(settings.shutdown_drain_seconds)
    readiness = Readiness(readiness_checks, optional=frozenset({"redis"}), draining=draining)
    # Streams go away as draining starts: sockets close with 1001 and event streams end,
    # so their clients reconnect to an instance that stays.
    closing: set[asyncio.Task[None]] = set()

    def close_streams() -> None:
        event_streams.close_all()
        task = asyncio.ensure_future(websocket.close_all())
        closing.add(task)
        task.add_done_callback(closing.discard)

    draining.on_drain(close_streams)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        draining.install()
        await jobs.start(run_jobs=settings.runs_jobs_in_process)
        try:
            yield
        finally:
            draining.uninstall()
            # Requests stopped at their deadline may still be closing connections (<= 2 s).
            await settle_unwinding(within_seconds=3.0)
            await jobs.stop()
            await db.dispose()
            if redis is not None:
                await redis.aclose()
            if pipe is not None:
                await pipe.aclose()

    app = DirectRouteApp(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            WebSocketRoute("/graphql", websocket),
            Route("/health", health, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/readyz", readiness.handle, methods=["GET"]),
            Route("/oauth/token", oauth_token.handle, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(ResponseHeadersMiddleware, hsts=settings.env is Environment.PRODUCTION),
            *_cors(settings),
            Middleware(InternalErrorMiddleware),
            Middleware(GZipOnRequest, minimum_size=settings.gzip_min_bytes),
        ],
        lifespan=lifespan,
    )
    app.direct("/graphql", graphql)  # the route every query takes, hits above all
    app.state.db = db
    app.state.executor = executor
    app.state.schema = schema
    app.state.settings = settings
    app.state.caching = caching
    app.state.websocket = websocket
    app.state.draining = draining
    app.state.jobs = jobs
    return app


def _resolve_document(
    settings: Settings, db: Database, redis: Redis | None, executor: GraphQLExecutor
) -> ResolveDocument:
    """The persisted document step: APQ store, trusted documents, who must use them."""
    trusted_only_anonymous = settings.trusted_documents_only

    def policy_for(context: Context) -> Policy:
        viewer = context.viewer
        if viewer.partner_id is not None:
            return Policy(trusted_only=True, partner_id=viewer.partner_id)
        return Policy(trusted_only_anonymous and not viewer.is_authenticated, None)

    async def find_trusted(partner_id: int | None, sha256: str) -> str | None:
        return await find_document(db, partner_id=partner_id, sha256=sha256)

    return ResolveDocument(
        store=build_persisted_query_store(settings, redis),
        find_trusted=find_trusted,
        pin=executor.documents.pin,
        policy_for=policy_for,
        max_query_bytes=settings.max_query_bytes,
    )


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
