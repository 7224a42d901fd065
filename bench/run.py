"""`make bench`: the benchmark suite of shopgraph on PostgreSQL, against a peer and a floor.

Prepares a seeded database (10,000 products, seed 42), then for each workload starts a
fresh server on 127.0.0.1, loads it with wrk (or, for the floor, runs raw asyncpg), and
writes bench/results/results.{md,json} and requests_per_second.png. See bench/README.md.
Every process it starts is stopped before it exits; all traffic stays on loopback. The
cached variants of W1 (W1e, W1r) use the bench's own Redis database (--redis-url), which
is emptied (FLUSHDB) before each of their servers starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import platform
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ParamSpec

import chart
import database
import facts
import flood
import floor
import loadgen
import noisy
import procs
import report
import sqlcount
import workloads
from servers import BENCH, BIN, PEER_PACKAGES, WORK, Servers, ensure_peers, serving
from workloads import W1_LISTING, CacheMode, Target, Workload

RESULTS = BENCH / "results"

STARTED = time.monotonic()
P = ParamSpec("P")


def say(message: str) -> None:
    """A progress line on stderr, with the seconds since start."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    duration_s: float
    runs: int
    warmup_s: float
    connections: int
    latency_connections: int
    latency_duration_s: float
    budget_s: float
    results_dir: Path
    only: frozenset[str]
    flood_connections: int
    flood_mix: str
    pin: bool
    pg_host: str
    pg_port: int
    pg_user: str
    database: str
    redis_url: str


def parse_options(argv: list[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description="shopgraph benchmark suite (see bench/README.md)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per throughput run")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per workload (median)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before measuring"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="wrk connections for throughput"
    )
    parser.add_argument(
        "--latency-connections", type=int, default=8, help="connections for p50/p99"
    )
    parser.add_argument(
        "--latency-duration", type=float, default=8.0, help="seconds of the latency run"
    )
    parser.add_argument(
        "--budget", type=float, default=570.0, help="skip workloads that would end later"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated workloads, e.g. W1,W5,W5b (default: all)"
    )
    parser.add_argument(
        "--results",
        default=str(RESULTS),
        help="directory of results.{md,json} and the chart (default bench/results)",
    )
    parser.add_argument(
        "--flood-connections", type=int, default=8, help="W1n: the flooder's connections"
    )
    parser.add_argument(
        "--flood-mix", default=flood.DEFAULT_MIX, help="W1n: the flood's requests per cycle"
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="W1n: do not pin the server and the load generators to separate CPUs",
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--database", default="shopgraph_bench")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/12",
        help="Redis database of W1e and W1r, emptied (FLUSHDB) before each of their servers",
    )
    args = parser.parse_args(argv)
    if args.pg_host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--pg-host must be a loopback address")
    redis_host = urllib.parse.urlsplit(args.redis_url).hostname
    if redis_host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--redis-url must name a loopback Redis")
    return Options(
        duration_s=args.duration,
        runs=max(1, args.runs),
        warmup_s=args.warmup,
        connections=args.connections,
        latency_connections=args.latency_connections,
        latency_duration_s=args.latency_duration,
        budget_s=args.budget,
        results_dir=Path(args.results).resolve(),
        only=frozenset(key.strip().upper() for key in args.only.split(",") if key.strip()),
        flood_connections=max(1, args.flood_connections),
        flood_mix=args.flood_mix,
        pin=args.pin,
        pg_host=args.pg_host,
        pg_port=args.pg_port,
        pg_user=args.pg_user,
        database=args.database,
        redis_url=args.redis_url,
    )


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


def _is_listing(workload: Workload) -> bool:
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
            listing = next((w for w in uncached if _is_listing(w)), None)
            reference = None if listing or not variants else variants[0]
            _count_group(servers, start, proxy, uncached, results, cold.counted, reference)
            cold.data = cold.counted.get(listing.key if listing else "cold")
        for mode in (CacheMode.ENTITY, CacheMode.RESPONSE):
            group = [w for w in variants if w.cache is mode]
            if not group:
                continue
            say(f"counting SQL statements of shopgraph, caches: {mode} (Redis emptied first)")
            if not _try(results[group[0].key], servers.flush_redis):
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
            _try(results["W6"], _count_floor, proxy, db.dsn(proxy_port), results["W6"])
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
                _try(result, count_statements, proxy, server, workload, result, counted)
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


def _try(
    result: report.WorkloadResult, action: Callable[P, None], *args: P.args, **kwargs: P.kwargs
) -> bool:
    """Run a measurement; on failure keep the reason in the result and go on."""
    try:
        action(*args, **kwargs)
    except (RuntimeError, OSError, ValueError, procs.ServerFailed) as error:
        result.error = str(error).splitlines()[0][:300]
        say(f"{result.key}: {result.error}")
        return False
    return True


def http_workload(
    opts: Options,
    servers: Servers,
    wrk: str,
    db: database.BenchDatabase,
    workload: Workload,
    result: report.WorkloadResult,
    cold: ColdListing,
) -> None:
    """Throughput runs, a latency run, CPU and RSS of a fresh server for one HTTP workload.

    A cached variant of W1 starts on an emptied Redis database; the checks before and
    after the load warm its caches, so wrk's requests are served warm (W1r: every one
    from the response cache, unless an entry outlives its 60 s maxAge mid-run).
    """
    body_file = WORK / "bodies" / f"{workload.key}.json"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(json.dumps(workload.body()), encoding="utf-8")
    if workload.cache is not CacheMode.OFF:
        servers.flush_redis()
    activity_before = database.activity(db)
    served = 2  # every request the server answered: the two checks, then wrk's
    with serving(servers, lambda: servers.for_target(workload.target, workload.cache)) as server:
        payload, first_body = checked_request(server, workload)
        result.response_bytes = len(first_body)
        result.fields = workloads.count_fields(payload["data"])
        if opts.warmup_s > 0:
            served += loadgen.run_wrk(
                wrk, server.url, body_file, connections=opts.connections, duration_s=opts.warmup_s
            ).requests
        cpu_total = db_total = 0.0
        requests = 0
        for run in range(opts.runs):
            cpu_before, db_before = server.cpu_seconds(), procs.postgres_cpu(opts.database)
            measured = loadgen.run_wrk(
                wrk, server.url, body_file, connections=opts.connections, duration_s=opts.duration_s
            )
            cpu_total += server.cpu_seconds() - cpu_before
            db_total += procs.postgres_cpu(opts.database).since(db_before)
            requests += measured.requests
            result.failed_requests += measured.errors
            result.rps_runs.append(measured.rps)
            say(
                f"{workload.key} run {run + 1}: {measured.rps:,.1f} req/s, {measured.errors} errors"
            )
        result.requests_measured = requests
        if requests:
            result.cpu_ms_per_request = round(cpu_total * 1000 / requests, 3)
            result.db_cpu_ms_per_request = round(db_total * 1000 / requests, 3)
        latency = loadgen.run_wrk(
            wrk,
            server.url,
            body_file,
            connections=opts.latency_connections,
            duration_s=opts.latency_duration_s,
        )
        served += requests + latency.requests
        result.failed_requests += latency.errors
        result.p50_ms, result.p99_ms = round(latency.p50_ms, 2), round(latency.p99_ms, 2)
        result.latency_connections, result.latency_rps = opts.latency_connections, latency.rps
        result.peak_rss_mb = round(server.peak_rss_kb() / 1024, 1)
        _, last_body = checked_request(server, workload)  # still answering after the load
        if _is_listing(workload):
            _check_bodies(workload, result, cold, first_body, last_body)
    time.sleep(0.5)  # the server's backends have exited and reported their counters
    _pg_activity(result, activity_before, database.activity(db), served)
    result.ran = True
    say(
        f"{workload.key}: median {result.rps:,.1f} req/s, p50 {result.p50_ms} ms, "
        f"p99 {result.p99_ms} ms at c{opts.latency_connections}"
    )


def data_bytes(raw: bytes) -> bytes:
    """A response body without its `extensions` (cost and throttle status vary per request).

    What is left is `{"data":...` exactly as the server encoded it; parsing it back must
    give the body's own data, or ValueError.
    """
    payload = json.loads(raw)
    if "extensions" not in payload:
        return raw
    cut = raw[: raw.rfind(b',"extensions":')]
    if json.loads(cut + b"}") != {"data": payload["data"]}:
        raise ValueError("the response's extensions are not its last member")
    return cut


def _check_bodies(
    workload: Workload, result: report.WorkloadResult, cold: ColdListing, *bodies: bytes
) -> None:
    """W1 and its variants: the bodies before and after the load equal the cold server's.

    Compared byte for byte up to `extensions` (which carry the request's cost and throttle
    status): the first uncached listing server gives the reference; a variant measured
    before any (or with none chosen) is compared by data with the count phase's.
    """
    if workload.cache is CacheMode.OFF and cold.body is None:
        cold.body, cold.body_from = data_bytes(bodies[0]), workload.key
    if cold.body is not None:
        same = all(data_bytes(body) == cold.body for body in bodies)
        check = f"bytes = {cold.body_from}"
    elif cold.data is not None:
        same = all(json.loads(body)["data"] == cold.data for body in bodies)
        check = "data = uncached"
    else:
        return
    if not same:
        result.error = f"response body differs from the uncached listing's ({check})"
        say(f"{workload.key}: {result.error}")
    if result.body_check != "DIFFERS":
        result.body_check = check if same else "DIFFERS"


def _pg_activity(
    result: report.WorkloadResult, before: tuple[int, int], after: tuple[int, int], served: int
) -> None:
    """Sessions opened and transactions per request over the whole life of a workload's server."""
    if served:
        result.pg_sessions_per_100 = round((after[0] - before[0]) * 100 / served, 2)
        result.pg_xacts_per_request = round((after[1] - before[1]) / served, 2)


def floor_workload(
    opts: Options, db: database.BenchDatabase, result: report.WorkloadResult
) -> None:
    """W6 in its own process per run: sets/s at the throughput concurrency, latency at the low one."""

    def one(concurrency: int, seconds: float) -> dict[str, Any]:
        db_before = procs.postgres_cpu(opts.database)
        argv = [
            str(BIN / "python"), str(BENCH / "floor.py"), "--dsn", db.dsn(),
            "--concurrency", str(concurrency), "--duration", str(seconds), "--warmup", "1",
        ]  # fmt: skip
        output = procs.run_checked(argv, timeout=seconds + 60)
        time.sleep(0.3)  # the postmaster reaps the floor's backends, adding their CPU to its own
        data: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        data["db_cpu_s"] = procs.postgres_cpu(opts.database).since(db_before)
        return data

    activity_before = database.activity(db)
    cpu = db_cpu = 0.0
    sets = total_sets = 0
    rss_kb = 0
    for run in range(opts.runs):
        data = one(opts.connections, opts.duration_s)
        result.rps_runs.append(float(data["sets_per_s"]))
        cpu += data["cpu_s"]
        db_cpu += data["db_cpu_s"]
        sets += data["sets"]
        total_sets += data["total_sets"]
        rss_kb = max(rss_kb, int(data["peak_rss_kb"]))
        say(f"W6 run {run + 1}: {data['sets_per_s']:,.1f} sets/s")
    latency = one(opts.latency_connections, opts.latency_duration_s)
    time.sleep(0.5)
    served = total_sets + int(latency["total_sets"])
    _pg_activity(result, activity_before, database.activity(db), served)
    result.requests_measured = sets
    result.cpu_ms_per_request = round(cpu * 1000 / sets, 3) if sets else None
    result.db_cpu_ms_per_request = round(db_cpu * 1000 / total_sets, 3) if total_sets else None
    result.p50_ms, result.p99_ms = latency["p50_ms"], latency["p99_ms"]
    result.latency_connections, result.latency_rps = opts.latency_connections, latency["sets_per_s"]
    result.peak_rss_mb = round(max(rss_kb, int(latency["peak_rss_kb"])) / 1024, 1)
    result.ran = True
    say(f"W6: median {result.rps:,.1f} sets/s, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms")


# --- the run --------------------------------------------------------------------------------


def prepare_peers(
    chosen: list[Workload], results: dict[str, report.WorkloadResult]
) -> tuple[frozenset[Target], dict[str, str]]:
    """Install the peers the chosen workloads need: the ready ones and the npm versions."""
    wanted = {w.target for w in chosen if w.target in PEER_PACKAGES}
    if not wanted:
        return frozenset(), {}
    try:
        versions = ensure_peers(say)
    except (RuntimeError, OSError, KeyError, ValueError) as error:
        for w in chosen:
            if w.target in wanted:
                results[w.key].error = f"PostGraphile unavailable: {str(error).splitlines()[0]}"
        say(f"peers skipped: {error}")
        return frozenset(), {}
    return frozenset(wanted), versions


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 when every chosen workload ran, 1 when some did not."""
    opts = parse_options(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    started_at = dt.datetime.now(dt.UTC)
    say("machine facts (1 s of idle sampling)")
    machine = facts.machine_facts()
    wrk = loadgen.ensure_wrk()
    db = database.BenchDatabase(opts.pg_host, opts.pg_port, opts.pg_user, opts.database)
    say("preparing the database")
    prepared = database.prepare(db, BIN / "shopgraph", say)
    say(prepared)
    chosen = [
        w
        for w in workloads.all_workloads(database.product_page_slug(db))
        if not opts.only or w.key.upper() in opts.only
    ]
    results = {w.key: report.WorkloadResult(w.key, w.title, w.role.value) for w in chosen}
    peers_ready, peer_versions = prepare_peers(chosen, results)
    servers = Servers(db, opts.redis_url)
    cold = ColdListing()
    interrupted = False
    try:
        statement_phase(opts, servers, db, chosen, results, peers_ready, cold)
        per_workload = opts.warmup_s + opts.runs * opts.duration_s + opts.latency_duration_s + 10
        for workload in chosen:
            result = results[workload.key]
            if workload.target in PEER_PACKAGES and workload.target not in peers_ready:
                continue
            needed = per_workload
            if workload.target is Target.SHOPGRAPH_FLOODED:
                needed = noisy.seconds_needed(opts.warmup_s, opts.runs, opts.latency_duration_s)
            if time.monotonic() - STARTED + needed > opts.budget_s:
                result.error = f"skipped: would pass the {opts.budget_s:.0f} s budget"
                say(f"{workload.key} {result.error}")
                continue
            say(f"{workload.key}: {workload.title}")
            if workload.target is Target.FLOOR:
                _try(result, floor_workload, opts, db, result)
            elif workload.target is Target.SHOPGRAPH_FLOODED:
                _try(result, noisy.noisy_workload, opts, servers, wrk, workload, result)
            else:
                _try(result, http_workload, opts, servers, wrk, db, workload, result, cold)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping servers, writing what was measured")
    finally:
        servers.stop_all()
    ordered = [results[w.key] for w in chosen]
    meta = {
        "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(
            [".venv/bin/python bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "total_seconds": round(time.monotonic() - STARTED, 1),
        "interrupted": interrupted,
        "machine": machine,
        "versions": {
            "Python": platform.python_version(),
            "strawberry-graphql": facts.package_version("strawberry-graphql"),
            "graphql-core": facts.package_version("graphql-core"),
            "Starlette": facts.package_version("starlette"),
            "uvicorn": facts.package_version("uvicorn"),
            "uvloop": facts.package_version("uvloop"),
            "httptools": facts.package_version("httptools"),
            "SQLAlchemy": facts.package_version("sqlalchemy"),
            "asyncpg": facts.package_version("asyncpg"),
            "PostgreSQL": database.server_version(db),
            "PostGraphile 5 (W5)": peer_versions.get("postgraphile", "not installed"),
            "PostGraphile 4 (W5b)": peer_versions.get("postgraphile4", "not installed"),
            "Node.js": facts.node_version(),
            "wrk": loadgen.wrk_version(wrk),
        },
        "database": f"{db.name} on {db.host}:{db.port}: {prepared}",
        "config": {
            "duration_s": opts.duration_s,
            "runs": opts.runs,
            "warmup_s": opts.warmup_s,
            "connections": opts.connections,
            "latency_connections": opts.latency_connections,
            "latency_duration_s": opts.latency_duration_s,
            "wrk_threads": 1,
            "server_workers": 1,
            "redis": opts.redis_url + " (W1e, W1r; FLUSHDB before each of their servers)",
        },
    }
    out = opts.results_dir
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "results.json", meta, ordered)
    report.write_markdown(out / "results.md", meta, ordered)
    subtitle = f"{machine['cpu_model']}, {machine['nproc']} cores, {meta['date']}"
    if any(result.rps for result in ordered):
        chart.draw(ordered, out / "requests_per_second.png", subtitle)
        say(f"wrote {out / 'results.md'}, results.json and requests_per_second.png")
    else:
        say(f"wrote {out / 'results.md'} and results.json (no req/s measured: no chart)")
    sys.stdout.write((out / "results.md").read_text(encoding="utf-8"))
    ran = sum(1 for r in ordered if r.ran)
    say(f"done in {time.monotonic() - STARTED:.0f} s; {ran} of {len(ordered)} workloads ran")
    return 0 if not interrupted and all(r.ran for r in ordered) else 1


if __name__ == "__main__":
    sys.exit(main())
