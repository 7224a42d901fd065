"""`make bench`: the benchmark suite of shopgraph on PostgreSQL, against a peer and a floor.

Prepares a seeded database (10,000 products, seed 42), then for each workload starts a
fresh server on 127.0.0.1, loads it with wrk (or, for the floor, runs raw asyncpg), and
writes bench/results/results.{md,json} and requests_per_second.png. See bench/README.md.
Every process it starts is stopped before it exits; all traffic stays on loopback. The
cached variants of W1 (W1e, W1r) use the bench's own Redis database (--redis-url), which
is emptied (FLUSHDB) before each of their servers starts.
"""

from __future__ import annotations

import datetime as dt
import platform
import signal
import sys
import time
from types import FrameType

import chart
import checkout
import database
import facts
import loadgen
import noisy
import report
import workloads
from options import parse_options
from progress import STARTED, attempt, say
from servers import BIN, PEER_PACKAGES, Servers, ensure_peers
from statements import ColdListing, statement_phase
from throughput import floor_workload, http_workload
from workloads import Target, Workload

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
            elif workload.target is Target.SHOPGRAPH_CHECKOUT:
                needed = checkout.seconds_needed(opts)
            if time.monotonic() - STARTED + needed > opts.budget_s:
                result.error = f"skipped: would pass the {opts.budget_s:.0f} s budget"
                say(f"{workload.key} {result.error}")
                continue
            say(f"{workload.key}: {workload.title}")
            if workload.target is Target.FLOOR:
                attempt(result, floor_workload, opts, db, result)
            elif workload.target is Target.SHOPGRAPH_FLOODED:
                attempt(result, noisy.noisy_workload, opts, servers, wrk, workload, result)
            elif workload.target is Target.SHOPGRAPH_CHECKOUT:
                attempt(result, checkout.checkout_workload, opts, servers, workload, result)
            else:
                attempt(result, http_workload, opts, servers, wrk, db, workload, result, cold)
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
