"""`make bench`: the benchmark suite of shopgraph on PostgreSQL, against a peer and a floor.

Prepares a seeded database (10,000 products, seed 42), then for each workload starts a
fresh server on 127.0.0.1, loads it with wrk (or, for the floor, runs raw asyncpg), and
writes bench/results/results.{md,json} and requests_per_second.png. See bench/README.md.
Every process it starts is stopped before it exits; all traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, ParamSpec

import chart
import database
import floor
import loadgen
import procs
import report
import sqlcount
import workloads
from workloads import Target, Workload

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
POSTGRAPHILE_CLI = BENCH / "node_modules" / "postgraphile" / "cli.js"
BIN = Path(sys.executable).parent

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
    only: frozenset[str]
    pg_host: str
    pg_port: int
    pg_user: str
    database: str


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
        "--only", default="", help="comma-separated workloads, e.g. W1,W5 (default: all)"
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--database", default="shopgraph_bench")
    args = parser.parse_args(argv)
    if args.pg_host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--pg-host must be a loopback address")
    return Options(
        duration_s=args.duration,
        runs=max(1, args.runs),
        warmup_s=args.warmup,
        connections=args.connections,
        latency_connections=args.latency_connections,
        latency_duration_s=args.latency_duration,
        budget_s=args.budget,
        only=frozenset(key.strip().upper() for key in args.only.split(",") if key.strip()),
        pg_host=args.pg_host,
        pg_port=args.pg_port,
        pg_user=args.pg_user,
        database=args.database,
    )


# --- the servers ----------------------------------------------------------------------------


@dataclass
class Servers:
    """Builds the servers under test and stops whatever is still running at the end."""

    db: database.BenchDatabase
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    running: list[procs.Server] = field(default_factory=list)

    def shopgraph(self, *, debug: bool = False, db_port: int | None = None) -> procs.Server:
        """shopgraph in production mode, 1 worker (uvicorn with uvloop and httptools, no access log)."""
        port = procs.free_port()
        env = {
            **os.environ,
            "SHOPGRAPH_ENV": "production",
            "SHOPGRAPH_SECRET_KEY": self.secret_key,
            "SHOPGRAPH_DEBUG": "true" if debug else "false",
            "SHOPGRAPH_DATABASE_URL": self.db.sqlalchemy_url(db_port),
            # One load generator on one IP is one caller: lift its cost budget so the
            # bench measures the work, not the throttle (query-cost checks stay on).
            "SHOPGRAPH_RATE_LIMIT_CAPACITY": "10000000",
            "SHOPGRAPH_RATE_LIMIT_RESTORE_RATE": "1000000",
        }
        argv = [str(BIN / "shopgraph"), "serve", "--port", str(port), "--workers", "1"]
        name = "shopgraph-debug" if debug else "shopgraph"
        return self._start(procs.Server(name, argv, port, WORK / "logs" / f"{name}.log"), env)

    def bare(self) -> procs.Server:
        """W0's bare Starlette app, served by uvicorn the same way."""
        port = procs.free_port()
        argv = [
            str(BIN / "python"), "-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        return self._start(
            procs.Server("bare", argv, port, WORK / "logs" / "bare.log"), dict(os.environ)
        )

    def postgraphile(self, *, db_port: int | None = None) -> procs.Server:
        """PostGraphile 4 over the same database: no GraphiQL, no mutations, no query log."""
        port = procs.free_port()
        argv = [
            shutil.which("node") or "node", str(POSTGRAPHILE_CLI),
            "--connection", self.db.dsn(db_port), "--schema", "public",
            "--host", "127.0.0.1", "--port", str(port), "--max-pool-size", "10",
            "--disable-query-log", "--disable-graphiql", "--disable-default-mutations",
        ]  # fmt: skip
        env = {**os.environ, "NODE_ENV": "production"}
        return self._start(
            procs.Server("postgraphile", argv, port, WORK / "logs" / "postgraphile.log"), env
        )

    def for_target(self, target: Target) -> procs.Server:
        """A fresh production server for a workload's target."""
        if target is Target.SHOPGRAPH:
            return self.shopgraph()
        if target is Target.BARE:
            return self.bare()
        if target is Target.POSTGRAPHILE:
            return self.postgraphile()
        raise ValueError(f"no server for {target}")

    def _start(self, server: procs.Server, env: dict[str, str]) -> procs.Server:
        self.running.append(server)
        server.start(env, ROOT)
        return server

    def stop(self, server: procs.Server) -> None:
        """Stop one server."""
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def stop_all(self) -> None:
        """Stop every server still running."""
        for server in list(self.running):
            self.stop(server)


@contextlib.contextmanager
def serving(servers: Servers, start: Callable[[], procs.Server]) -> Iterator[procs.Server]:
    """A server for the length of a with-block."""
    server = start()
    try:
        yield server
    finally:
        servers.stop(server)


# --- one request, checked -------------------------------------------------------------------


def checked_request(server: procs.Server, workload: Workload) -> tuple[dict[str, Any], int]:
    """POST the workload once; the response JSON and its size, or RuntimeError if it failed."""
    status, raw = procs.post_json(server.url, workload.body())
    if status != 200:
        raise RuntimeError(f"{workload.key} answered HTTP {status}: {raw[:300]!r}")
    payload: dict[str, Any] = json.loads(raw)
    if payload.get("errors") or payload.get("data") is None:
        raise RuntimeError(
            f"{workload.key} answered errors: {json.dumps(payload.get('errors'))[:500]}"
        )
    return payload, len(raw)


def count_statements(
    proxy: sqlcount.CountingProxy,
    server: procs.Server,
    workload: Workload,
    result: report.WorkloadResult,
) -> None:
    """Warm pools and caches with 20 runs of the workload, then count the next request's SQL.

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
    debug = (payload.get("extensions") or {}).get("debug") or {}
    if "sqlStatements" in debug:
        result.app_statement_count = int(debug["sqlStatements"])


# --- the phases -----------------------------------------------------------------------------


def statement_phase(
    opts: Options,
    servers: Servers,
    db: database.BenchDatabase,
    chosen: list[Workload],
    results: dict[str, report.WorkloadResult],
    peer_ready: bool,
) -> None:
    """Count SQL per request for every workload through the wire-counting proxy."""
    proxy = sqlcount.CountingProxy(opts.pg_host, opts.pg_port)
    proxy_port = proxy.start()
    try:
        ours = [w for w in chosen if w.target is Target.SHOPGRAPH]
        if ours:
            say("counting SQL statements of shopgraph (debug server through the counting proxy)")
            start = functools.partial(servers.shopgraph, debug=True, db_port=proxy_port)
            _count_group(servers, start, proxy, ours, results)
        peer = [w for w in chosen if w.target is Target.POSTGRAPHILE]
        if peer and peer_ready:
            say("counting SQL statements of PostGraphile (through the counting proxy)")
            start = functools.partial(servers.postgraphile, db_port=proxy_port)
            _count_group(servers, start, proxy, peer, results)
        if "W6" in results:
            _try(results["W6"], _count_floor, proxy, db.dsn(proxy_port), results["W6"])
        for workload in chosen:
            if workload.target is Target.BARE:
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
) -> None:
    """Start one server through the proxy and count each workload of the group on it."""
    try:
        with serving(servers, start) as server:
            for workload in group:
                result = results[workload.key]
                _try(result, count_statements, proxy, server, workload, result)
    except procs.ServerFailed as error:
        for workload in group:
            results[workload.key].error = f"SQL not counted: {error}"
        say(f"SQL not counted: {error}")


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
) -> None:
    """Throughput runs, a latency run, CPU and RSS of a fresh server for one HTTP workload."""
    body_file = WORK / "bodies" / f"{workload.key}.json"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(json.dumps(workload.body()), encoding="utf-8")
    activity_before = database.activity(db)
    served = 2  # every request the server answered: the two checks, then wrk's
    with serving(servers, lambda: servers.for_target(workload.target)) as server:
        payload, size = checked_request(server, workload)
        result.response_bytes = size
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
        checked_request(server, workload)  # still answering correctly after the load
    time.sleep(0.5)  # the server's backends have exited and reported their counters
    _pg_activity(result, activity_before, database.activity(db), served)
    result.ran = True
    say(
        f"{workload.key}: median {result.rps:,.1f} req/s, p50 {result.p50_ms} ms, "
        f"p99 {result.p99_ms} ms at c{opts.latency_connections}"
    )


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


# --- set-up and facts -----------------------------------------------------------------------


def ensure_postgraphile() -> str:
    """PostGraphile's version, installing bench/package.json's pin into bench/node_modules if needed."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise RuntimeError("node and npm are needed for the peer (W5)")
    wanted = json.loads((BENCH / "package.json").read_text())["dependencies"]["postgraphile"]
    installed = BENCH / "node_modules" / "postgraphile" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        say(f"npm install postgraphile@{wanted} into bench/node_modules")
        procs.run_checked(
            [
                "npm",
                "install",
                "--prefix",
                str(BENCH),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            timeout=300,
        )
    return str(json.loads(installed.read_text())["version"])


def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, memory, kernel, and how busy the machine was just before."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "busy_before_pct": round(procs.machine_busy_share() * 100, 1),
        "loadavg": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def package_version(name: str) -> str:
    """An installed Python distribution's version."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def node_version() -> str:
    """`node --version`, or why not."""
    try:
        return procs.run_checked(["node", "--version"], timeout=10).strip()
    except (OSError, RuntimeError):
        return "not available"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 when every chosen workload ran, 1 when some did not."""
    opts = parse_options(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    started_at = dt.datetime.now(dt.UTC)
    say("machine facts (1 s of idle sampling)")
    machine = machine_facts()
    wrk = loadgen.ensure_wrk()
    db = database.BenchDatabase(opts.pg_host, opts.pg_port, opts.pg_user, opts.database)
    say("preparing the database")
    prepared = database.prepare(db, BIN / "shopgraph", say)
    say(prepared)
    chosen = [
        w
        for w in workloads.all_workloads(database.product_page_slug(db))
        if not opts.only or w.key in opts.only
    ]
    results = {w.key: report.WorkloadResult(w.key, w.title, w.role.value) for w in chosen}
    postgraphile_version = "not installed"
    peer_ready = False
    if any(w.target is Target.POSTGRAPHILE for w in chosen):
        try:
            postgraphile_version = ensure_postgraphile()
            peer_ready = True
        except (RuntimeError, OSError, KeyError, ValueError) as error:
            for w in chosen:
                if w.target is Target.POSTGRAPHILE:
                    results[w.key].error = f"PostGraphile unavailable: {str(error).splitlines()[0]}"
            say(f"W5 skipped: {error}")
    servers = Servers(db)
    interrupted = False
    try:
        statement_phase(opts, servers, db, chosen, results, peer_ready)
        per_workload = opts.warmup_s + opts.runs * opts.duration_s + opts.latency_duration_s + 10
        for workload in chosen:
            result = results[workload.key]
            if workload.target is Target.POSTGRAPHILE and not peer_ready:
                continue
            if time.monotonic() - STARTED + per_workload > opts.budget_s:
                result.error = f"skipped: would pass the {opts.budget_s:.0f} s budget"
                say(f"{workload.key} {result.error}")
                continue
            say(f"{workload.key}: {workload.title}")
            if workload.target is Target.FLOOR:
                _try(result, floor_workload, opts, db, result)
            else:
                _try(result, http_workload, opts, servers, wrk, db, workload, result)
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
            "strawberry-graphql": package_version("strawberry-graphql"),
            "graphql-core": package_version("graphql-core"),
            "Starlette": package_version("starlette"),
            "uvicorn": package_version("uvicorn"),
            "uvloop": package_version("uvloop"),
            "httptools": package_version("httptools"),
            "SQLAlchemy": package_version("sqlalchemy"),
            "asyncpg": package_version("asyncpg"),
            "PostgreSQL": database.server_version(db),
            "PostGraphile": postgraphile_version,
            "Node.js": node_version(),
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
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    report.write_json(RESULTS / "results.json", meta, ordered)
    report.write_markdown(RESULTS / "results.md", meta, ordered)
    subtitle = f"{machine['cpu_model']}, {machine['nproc']} cores, {meta['date']}"
    chart.draw(ordered, RESULTS / "requests_per_second.png", subtitle)
    say(f"wrote {RESULTS / 'results.md'}, results.json and requests_per_second.png")
    sys.stdout.write((RESULTS / "results.md").read_text(encoding="utf-8"))
    ran = sum(1 for r in ordered if r.ran)
    say(f"done in {time.monotonic() - STARTED:.0f} s; {ran} of {len(ordered)} workloads ran")
    return 0 if not interrupted and all(r.ran for r in ordered) else 1


if __name__ == "__main__":
    sys.exit(main())
