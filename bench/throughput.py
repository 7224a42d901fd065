"""The throughput phases: wrk against a fresh server per workload, and the raw-SQL floor."""

from __future__ import annotations

import json
import time
from typing import Any

import database
import loadgen
import procs
import report
import workloads
from options import Options
from progress import say
from servers import BENCH, BIN, WORK, Servers, serving
from statements import ColdListing, checked_request, is_listing
from workloads import CacheMode, Workload


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
        if is_listing(workload):
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
