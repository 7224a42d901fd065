"""The response cache step, and the HTTP caching headers (Cache-Control, ETag, 304).

A query whose cache hints allow sharing (app/engine/cache_hints.py: a maxAge above 0, no
PRIVATE field) and whose caller sees the public view (`view_of`; staff, who see
unpublished products, are never served or stored) is looked up by document hash,
operation name and variables. On a hit the stored, already-encoded `data` is answered
as it is: no parse (the document cache), no execution, no SQL, no JSON encoding of the
data, and one cache round trip. On a miss the operation runs; a response without errors
is stored for maxAge seconds, tagged with the tags of everything its loaders read, and
dropped by the change events that touch one of them. The read before execution gives the
sequence number the store checks at fill time: a response computed while one of its tags
changed is not stored (app/platform/cache.py).

A hit costs what the same operation costs when it runs: the actual cost is stored in
front of the response (a priced entry), and the rate-limit step, which reads the entry
for this step in the same round trip as its take (`plan` names the key), charges that
price instead of the estimate (app/platform/charged_read.py). So caching changes no
caller's budget, and a hit is one round trip to Redis. Without rate limits this step
reads the entry itself.

GET responses carry `Cache-Control` from the same policy (`public, max-age=N`, `private,
max-age=N`, or `no-store`) and a weak `ETag` of the data; `If-None-Match` with that ETag
answers 304 with no body, whether the data came from the cache or was just computed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
import structlog
from graphql import OperationType

from app.engine import CachePolicy, GraphQLExecutor
from app.http.pipeline import Next, RequestState
from app.platform.cache import Entry, TaggedCache

NO_STORE = "no-store"
# One DEBUG line per request with its hits and misses per layer (never one per key).
logger = structlog.get_logger("shopgraph.cache")
_debug_enabled = logging.getLogger("shopgraph.cache").isEnabledFor


class Plan(NamedTuple):
    """What this step does with a request: its policy, and the key it is cached under."""

    policy: CachePolicy | None  # None: not a query (no caching, no caching headers)
    key: str | None  # None: never served from or stored in the cache
    ttl: int


def _key(state: RequestState, view: str) -> str:
    params = state.params
    document = hashlib.blake2b(params.query.encode(), digest_size=16).hexdigest()
    variables = b""
    if params.variables:
        variables = orjson.dumps(params.variables, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.blake2b(variables, digest_size=12).hexdigest()
    return f"r:{view}:{document}:{params.operation_name or ''}:{digest}"


def _etag(data: bytes) -> str:
    return 'W/"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison, as RFC 9110 asks for If-None-Match."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _cache_control(policy: CachePolicy) -> str:
    if policy.max_age is None or policy.max_age <= 0:
        return NO_STORE
    return f"{'private' if policy.private else 'public'}, max-age={policy.max_age}"


class ResponseCache:
    """Serves public queries from the tagged cache and stores what it may; sets HTTP caching.

    `view_of(context)` names the view a caller sees (None: never cached, e.g. staff);
    `read_tags_of(context)` the tags its loaders read; `stats_of(context)` its hit counts.
    With `debug`, a hit reports its 0 SQL statements in extensions.debug.
    """

    def __init__(
        self,
        executor: GraphQLExecutor,
        cache: TaggedCache | None,
        *,
        view_of: Callable[[Any], str | None],
        read_tags_of: Callable[[Any], Any],
        stats_of: Callable[[Any], Any],
        debug: bool = False,
    ) -> None:
        self.executor = executor
        self.cache = cache
        self.view_of = view_of
        self.read_tags_of = read_tags_of
        self.stats_of = stats_of
        self.debug = debug

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        """Answer from the cache, or run the operation and store its response."""
        await self._serve(state, call_next)
        stats = state.cache_stats
        if stats is not None and _debug_enabled(logging.DEBUG):  # checked first: the hit path
            logger.debug(
                "cache",
                request_id=state.request_id,
                entity_hits=stats.entity_hits,
                entity_misses=stats.entity_misses,
                response=stats.response,
            )

    def plan(self, state: RequestState) -> Plan:
        """The request's cache policy and key (made once, kept on the state)."""
        plan: Plan | None = state.response_plan
        if plan is not None:
            return plan
        prepared = state.prepared
        assert prepared is not None, "limits and cost runs first"
        operation_name = state.params.operation_name
        is_query = prepared.operation_type(operation_name) is OperationType.QUERY
        policy = self.executor.cache_policy(prepared, operation_name) if is_query else None
        ttl = policy.shareable_seconds if policy is not None else 0
        view = self.view_of(state.context) if ttl > 0 and self.cache is not None else None
        key = _key(state, view) if view is not None and policy is not None else None
        plan = state.response_plan = Plan(policy, key, ttl)
        return plan

    def lookup(self, state: RequestState) -> str | None:
        """The key a hit would be read under, for a step that reads it on this one's behalf."""
        return self.plan(state).key

    async def _serve(self, state: RequestState, call_next: Next) -> None:
        context = state.context
        stats = state.cache_stats = self.stats_of(context)
        policy, key, ttl = self.plan(state)
        over_get = state.connection.scope.get("method") == "GET"
        if key is None or self.cache is None or policy is None:
            await call_next(state)
            if over_get and policy is not None:
                self._http_caching(state, policy, None)
            return
        snapshot = state.response_snapshot
        if snapshot is None:
            snapshot = await self.cache.read([key])
        stored = snapshot.values[0] if snapshot is not None else None
        if stored is not None:
            head, _, data = stored.partition(b"\n")
            actual, etag = head.decode().split(" ", 1)
            stats.response = "hit"
            state.encoded_data = data
            state.executed = True
            state.actual = int(actual)
            if self.debug:
                state.sql_statements = 0
            if over_get:
                self._http_caching(state, policy, etag)
            return
        stats.response = "miss"
        await call_next(state)
        if state.errors or not state.executed or state.data is None:
            if over_get:
                self._http_caching(state, policy, None)
            return
        data = orjson.dumps(state.data)
        state.encoded_data = data
        etag = _etag(data)
        if over_get:
            self._http_caching(state, policy, etag)
        read = self.read_tags_of(context)
        if snapshot is None or read.untaggable or not read.tags:
            return  # the store is down, or nothing names what this read: not stored
        value = f"{state.actual or 0} {etag}\n".encode() + data
        await self.cache.fill(snapshot, [Entry(key, value, sorted(read.tags))], ttl)

    @staticmethod
    def _http_caching(state: RequestState, policy: CachePolicy, etag: str | None) -> None:
        if state.errors or state.refusal is not None:
            state.response_headers = {"Cache-Control": NO_STORE}
            return
        headers = {"Cache-Control": _cache_control(policy)}
        if headers["Cache-Control"] == NO_STORE:
            state.response_headers = headers  # nothing keeps it: no validator either
            return
        if etag is None and state.data is not None:
            state.encoded_data = orjson.dumps(state.data)
            etag = _etag(state.encoded_data)
        if etag is not None:
            headers["ETag"] = etag
            if _matches(state.connection.headers.get("if-none-match"), etag):
                state.not_modified = True
        state.response_headers = headers


__all__ = ["ResponseCache"]
