"""The SQL-count phase: each server through the counting proxy, and what its answers prove.

Also the one checked request every phase starts from (`checked_request`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import database
import floor
import procs
import report
import sqlcount
import workloads
from options import Options
from progress import attempt, say
from servers import PEER_PACKAGES, Servers, serving
from workloads import W1_LISTING, CacheMode, Target, Workload

# --- one request, checked -------------------------------------------------------------------


def checked_request(server: procs.Server, workload: Workload) -> tuple[dict[str, Any], bytes]:
    """POST the workload once; the response JSON and its bytes, or RuntimeError if it failed."""
    status, raw = procs.post_json(server.url, workload.body())
    if status != 200:
        raise RuntimeError(f"{workload.key} answered HTTP {status}: {raw[:300]!r}")
    payload: dict[str, Any] = json.loads(raw)
    if payload.get("errors") or payload.get("data") is None:
        raise RuntimeError(
            f"{workload.key} answered errors: {json.dumps(payload.get('errors'))[:500]}"
        )
    return payload, raw


@dataclass
class ColdListing:
    """W1 as the uncached server answers it, for the check that the cached variants agree.

    `data` comes from the count phase (a debug server: its bodies carry extensions, so
    the data is compared), `body` from the first cold W1 or W1c throughput server, whose
    production body the variants' bodies must equal byte for byte.
    """

    data: Any = None
    body: bytes | None = None
    body_from: str = ""
    counted: dict[str, Any] = field(default_factory=dict)


def is_listing(workload: Workload) -> bool:
    return workload.target is Target.SHOPGRAPH and workload.query == W1_LISTING


def check_cache_mode(workload: Workload, result: report.WorkloadResult) -> None:
    """The counted request used exactly the caches its workload names (extensions.debug.cache)."""
    stats = result.cache_debug or {}
    entity = stats.get("entity") or {}
    hits, response = int(entity.get("hits") or 0), stats.get("response")
    expected = {
        CacheMode.OFF: response is None and hits == 0,
        CacheMode.ENTITY: response is None and hits > 0,
        CacheMode.RESPONSE: response == "hit",
    }[workload.cache]
    if not expected:
        raise RuntimeError(
            f"caches not as configured ({workload.cache}): extensions.debug.cache = {stats}"
        )


def count_statements(
    proxy: sqlcount.CountingProxy,
    server: procs.Server,
    workload: Workload,
    result: report.WorkloadResult,
    counted: dict[str, Any],
) -> None:
    """Warm pools and caches with 20 runs of the workload, then count the next request's SQL.

    The counted response's data goes into `counted` (by workload), and for shopgraph the
    caches it used (extensions.debug.cache) must be those its workload names.

    20, not a few: a fresh pooled connection sends asyncpg's type introspection on first use
    of a type, and a pool of 10 is cycled through, so a few runs leave some connections fresh.
    """
    for _ in range(20):
        checked_request(server, workload)
    time.sleep(0.2)
    proxy.reset()
    payload, _ = checked_request(server, workload)
    time.sleep(0.3)  # let COMMITs or pool resets sent after the response reach the proxy
    taken = proxy.taken()
    result.statements = taken.total
    result.statements_data = taken.data
    result.statements_text = taken.statements
    result.fields = workloads.count_fields(payload["data"])
    counted[workload.key] = payload["data"]
    debug = (payload.get("extensions") or {}).get("debug") or {}
    if "sqlStatements" in debug:
        result.app_statement_count = int(debug["sqlStatements"])
    if workload.target is Target.SHOPGRAPH:
        result.cache_debug = debug.get("cache")
        check_cache_mode(workload, result)


# --- the phases -----------------------------------------------------------------------------


def statement_phase(
    opts: Options,
    servers: Servers,
    db: database.BenchDatabase,
    chosen: list[Workload],
    results: dict[str, report.WorkloadResult],
    peers_ready: frozenset[Target],
    cold: ColdListing,
) -> None:
    """Count SQL per request for every workload through the wire-counting proxy.

    shopgraph's uncached workloads share one debug server; each cache mode of the W1
    variants gets its own, started on an emptied Redis database. The cold server also
    gives the listing data that the cached variants' data must equal.
    """
    proxy = sqlcount.CountingProxy(opts.pg_host, opts.pg_port)
    proxy_port = proxy.start()
    try:
        ours = [w for w in chosen if w.target is Target.SHOPGRAPH]
        uncached = [w for w in ours if w.cache is CacheMode.OFF]
        variants = [w for w in ours if w.cache is not CacheMode.OFF]
        if uncached or variants:
            say("counting SQL statements of shopgraph (debug server through the counting proxy)")
            start = functools.partial(servers.shopgraph, debug=True, db_port=proxy_port)
            # With no uncached listing chosen, one request gives the cold data anyway.
            listing = next((w for w in uncached if is_listing(w)), None)
            reference = None if listing or not variants else variants[0]
            _count_group(servers, start, proxy, uncached, results, cold.counted, reference)
            cold.data = cold.counted.get(listing.key if listing else "cold")
        for mode in (CacheMode.ENTITY, CacheMode.RESPONSE):
            group = [w for w in variants if w.cache is mode]
            if not group:
                continue
            say(f"counting SQL statements of shopgraph, caches: {mode} (Redis emptied first)")
            if not attempt(results[group[0].key], servers.flush_redis):
                continue
            start = functools.partial(servers.shopgraph, cache=mode, debug=True, db_port=proxy_port)
            _count_group(servers, start, proxy, group, results, cold.counted)
        for workload in variants:
            _check_counted_data(workload, results[workload.key], cold)
        for target in PEER_PACKAGES:
            peer = [w for w in chosen if w.target is target]
            if peer and target in peers_ready:
                say(f"counting SQL statements of {target} (through the counting proxy)")
                start = functools.partial(servers.peer, target, db_port=proxy_port)
                _count_group(servers, start, proxy, peer, results, {})
        if "W6" in results:
            attempt(results["W6"], _count_floor, proxy, db.dsn(proxy_port), results["W6"])
        for workload in chosen:
            if workload.target in (Target.BARE, Target.BARE_REDIS):
                results[workload.key].statements = 0
                results[workload.key].statements_data = 0
    finally:
        proxy.stop()


def _count_group(
    servers: Servers,
    start: Callable[[], procs.Server],
    proxy: sqlcount.CountingProxy,
    group: list[Workload],
    results: dict[str, report.WorkloadResult],
    counted: dict[str, Any],
    reference: Workload | None = None,
) -> None:
    """Start one server through the proxy and count each workload of the group on it.

    With `reference`, also ask that workload once and keep its data as counted["cold"].
    """
    try:
        with serving(servers, start) as server:
            for workload in group:
                result = results[workload.key]
                attempt(result, count_statements, proxy, server, workload, result, counted)
            if reference is not None:
                try:
                    counted["cold"] = checked_request(server, reference)[0]["data"]
                except (RuntimeError, OSError) as error:
                    say(f"uncached W1 data not taken: {error}")
    except procs.ServerFailed as error:
        for workload in group:
            results[workload.key].error = f"SQL not counted: {error}"
        say(f"SQL not counted: {error}")


def _check_counted_data(
    workload: Workload, result: report.WorkloadResult, cold: ColdListing
) -> None:
    """A cached variant's counted data must equal the uncached server's."""
    data = cold.counted.get(workload.key)
    if data is None or cold.data is None:
        return
    if data != cold.data:
        result.error = "data differs from uncached W1's (count phase)"
        say(f"{workload.key}: {result.error}")
        result.body_check = "DIFFERS"
    else:
        result.body_check = "data = uncached"


def _count_floor(proxy: sqlcount.CountingProxy, dsn: str, result: report.WorkloadResult) -> None:
    """Count the statements of one floor set (the second on its connection)."""
    asyncio.run(floor.run_once(dsn, before_measured=proxy.reset))
    time.sleep(0.2)
    taken = proxy.taken()
    result.statements = taken.total
    result.statements_data = taken.data
    result.statements_text = taken.statements
