"""W7 and W7s: checkout throughput and latency, on one hot variant and spread over many.

Every request is a real `checkout` of a signed-in customer: a prepared guest cart (one
line, quantity 1) named by its token, a shipping address (sealed with AES-GCM), the test
gateway's `tok_success` (authorized and captured) and a fresh idempotency key. W7 puts one
variant in every cart, so every checkout takes the same row lock for its conditional
stock update; W7s spreads the carts round robin over `workloads.SPREAD_VARIANTS` (1,000).

Set-up and clean-up, in the bench database: the chosen variants' stock is saved to
`bench/.work/` and set to `STOCK` (so no checkout is refused for stock: any OUT_OF_STOCK
is counted and shown), customers register through the server (its per-IP registration
limit lifted, like the cost budget), carts are inserted by SQL before each run (more
than the run can use), and afterwards the stock is restored and every order, customer
and cart the workload made is deleted, so later workloads see the seeded database. A run
interrupted before its clean-up is cleaned up by the next one (from the saved stock and customer ids).
"""

from __future__ import annotations

import asyncio
import json
import resource
import secrets
import statistics
import time
from collections import Counter
from typing import Any

import asyncpg
import database
import procs
import report
from options import Options
from progress import say
from servers import BENCH, BIN, WORK, Servers, serving
from workloads import Workload

from app.platform.global_ids import decode_id_of

STOCK = 1_000_000
CART_PREFIX = "bench-w7-"
EMAIL_DOMAIN = "w7.bench.example"
# Carts inserted per second of a run: several times what one worker checks out.
CARTS_PER_SECOND = 1_500
SAVED_STOCK = WORK / "w7-stock.json"
# The workload's customers by id (their emails are sealed: no SQL can find them by domain).
SAVED_CUSTOMERS = WORK / "w7-customers.json"
LOAD = BENCH / "checkout_load.py"
REGISTER = """
mutation ($input: RegisterInput!) {
  register(input: $input) { accessToken user { id } userErrors { code } }
}
"""


def seconds_needed(opts: Options) -> float:
    """About how long one of W7's workloads takes: set-up, warm-up, runs, latency run."""
    return 25 + opts.warmup_s + opts.runs * opts.duration_s + opts.latency_duration_s


# --- the database -----------------------------------------------------------------------


async def _clean_up(db: database.BenchDatabase) -> None:
    """Restore saved stock; delete this workload's orders, customers and carts."""
    connection = await asyncpg.connect(db.dsn())
    try:
        async with connection.transaction():
            if SAVED_STOCK.exists():
                saved = json.loads(SAVED_STOCK.read_text(encoding="utf-8"))
                await connection.execute(
                    "UPDATE product_variants v SET stock = s.stock"
                    " FROM unnest($1::int[], $2::int[]) AS s(id, stock) WHERE v.id = s.id",
                    [int(key) for key in saved],
                    list(saved.values()),
                )
            customers = _saved_customers()
            await connection.execute("DELETE FROM orders WHERE user_id = ANY($1::int[])", customers)
            await connection.execute("DELETE FROM users WHERE id = ANY($1::int[])", customers)
            await connection.execute("DELETE FROM carts WHERE token LIKE $1", CART_PREFIX + "%")
    finally:
        await connection.close()
    SAVED_STOCK.unlink(missing_ok=True)
    SAVED_CUSTOMERS.unlink(missing_ok=True)


def _saved_customers() -> list[int]:
    """The ids of the customers registered so far (by this run, or one interrupted)."""
    if not SAVED_CUSTOMERS.exists():
        return []
    return [int(pk) for pk in json.loads(SAVED_CUSTOMERS.read_text(encoding="utf-8"))]


def _save_customer(global_id: str) -> None:
    """Add a registered customer (its User ID) to SAVED_CUSTOMERS before it can order."""
    SAVED_CUSTOMERS.parent.mkdir(parents=True, exist_ok=True)
    saved = [*_saved_customers(), decode_id_of(global_id, "User")]
    SAVED_CUSTOMERS.write_text(json.dumps(saved), encoding="utf-8")


async def _stock_up(db: database.BenchDatabase, count: int) -> list[int]:
    """The first `count` published variants, their stock saved and set to STOCK; their ids."""
    connection = await asyncpg.connect(db.dsn())
    try:
        rows = await connection.fetch(
            "SELECT v.id, v.stock FROM product_variants v JOIN products p ON p.id = v.product_id"
            " WHERE p.is_published ORDER BY v.id LIMIT $1",
            count,
        )
        SAVED_STOCK.parent.mkdir(parents=True, exist_ok=True)
        SAVED_STOCK.write_text(json.dumps({str(r["id"]): r["stock"] for r in rows}), "utf-8")
        ids = [int(row["id"]) for row in rows]
        await connection.execute(
            "UPDATE product_variants SET stock = $2 WHERE id = ANY($1::int[])", ids, STOCK
        )
        return ids
    finally:
        await connection.close()


async def _insert_carts(
    db: database.BenchDatabase, variant_ids: list[int], count: int
) -> list[str]:
    """`count` guest carts, one line each (quantity 1, variants round robin); their tokens."""
    tokens = [CART_PREFIX + secrets.token_urlsafe(18) for _ in range(count)]
    chosen = [variant_ids[index % len(variant_ids)] for index in range(count)]
    connection = await asyncpg.connect(db.dsn())
    try:
        await connection.execute(
            "WITH made AS (INSERT INTO carts (token, created_at, updated_at)"
            "   SELECT token, now(), now() FROM unnest($1::text[]) AS token RETURNING id, token)"
            " INSERT INTO cart_lines (cart_id, variant_id, quantity, created_at)"
            " SELECT made.id, wanted.variant_id, 1, now()"
            " FROM made JOIN unnest($1::text[], $2::int[]) AS wanted(token, variant_id)"
            " ON wanted.token = made.token",
            tokens,
            chosen,
        )
        # Fresh statistics, as a shop's would be: the planner must not take the bulk-loaded
        # tables for empty ones (a plan for empty tables scans product_variants per checkout).
        await connection.execute("ANALYZE carts, cart_lines, orders, checkout_keys, payments")
    finally:
        await connection.close()
    return tokens


async def _stock_taken(db: database.BenchDatabase, variant_ids: list[int]) -> tuple[int, int]:
    """(units reserved from the chosen variants, orders of the workload's customers)."""
    connection = await asyncpg.connect(db.dsn())
    try:
        left = await connection.fetchval(
            "SELECT sum(stock) FROM product_variants WHERE id = ANY($1::int[])", variant_ids
        )
        orders = await connection.fetchval(
            "SELECT count(*) FROM orders WHERE user_id = ANY($1::int[])", _saved_customers()
        )
        return STOCK * len(variant_ids) - int(left), int(orders)
    finally:
        await connection.close()


# --- the load ---------------------------------------------------------------------------


def _register(url: str, count: int) -> list[str]:
    """`count` fresh customers registered through the server; their access tokens."""
    tokens = []
    for _ in range(count):
        email = f"c-{secrets.token_hex(6)}@{EMAIL_DOMAIN}"
        variables = {
            "input": {"email": email, "password": secrets.token_urlsafe(18), "fullName": "Bench"}
        }
        status, raw = procs.post_json(url, {"query": REGISTER, "variables": variables})
        payload = json.loads(raw) if status == 200 else {}
        registered = (payload.get("data") or {}).get("register") or {}
        token, user = registered.get("accessToken"), registered.get("user") or {}
        if not token or not user.get("id"):
            raise procs.ServerFailed(f"register failed ({status}): {raw[:300]!r}")
        _save_customer(user["id"])
        tokens.append(token)
    return tokens


def _run_load(
    db: database.BenchDatabase,
    url: str,
    customers: list[str],
    variant_ids: list[int],
    *,
    connections: int,
    duration_s: float,
) -> dict[str, Any]:
    """Insert carts, then one closed-loop run of the load generator; its summary."""
    carts = asyncio.run(
        _insert_carts(db, variant_ids, max(200, round(CARTS_PER_SECOND * duration_s)))
    )
    plan = WORK / "bodies" / "w7-plan.json"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps({"url": url, "customers": customers, "carts": carts}), "utf-8")
    argv = [
        str(BIN / "python"), str(LOAD), "--plan", str(plan),
        "--connections", str(connections), "--duration", str(duration_s),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = procs.run_checked(argv, timeout=duration_s + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in output.splitlines() if line.startswith("CHECKOUT_JSON "))
    summary: dict[str, Any] = json.loads(line.removeprefix("CHECKOUT_JSON "))
    # The load generator's own CPU (it shares the cores with the server), start-up included.
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summary["client_cpu_ms_per_request"] = (
        round(spent * 1000 / summary["requests"], 2) if summary["requests"] else None
    )
    if summary["carts_exhausted"]:
        say("W7: the prepared carts ran out before the run's end (req/s still counted)")
    return summary


def checkout_workload(
    opts: Options, servers: Servers, workload: Workload, result: report.WorkloadResult
) -> None:
    """W7 / W7s: warm-up, `--runs` throughput runs, a latency run, and the stock check."""
    db = servers.db
    asyncio.run(_clean_up(db))  # what an interrupted earlier run left
    variant_ids = asyncio.run(_stock_up(db, workload.variants))
    activity_before = database.activity(db)
    try:
        with serving(servers, lambda: servers.shopgraph(checkout=True)) as server:
            customers = _register(server.url, max(opts.connections, opts.latency_connections))

            def load(connections: int, seconds: float) -> dict[str, Any]:
                return _run_load(
                    db, server.url, customers, variant_ids,
                    connections=connections, duration_s=seconds,
                )  # fmt: skip

            if opts.warmup_s > 0:
                load(opts.connections, opts.warmup_s)
            runs, cpu, db_cpu = [], 0.0, 0.0
            for run in range(opts.runs):
                cpu_before, db_before = server.cpu_seconds(), procs.postgres_cpu(opts.database)
                measured = load(opts.connections, opts.duration_s)
                cpu += server.cpu_seconds() - cpu_before
                db_cpu += procs.postgres_cpu(opts.database).since(db_before)
                runs.append(measured)
                say(
                    f"{workload.key} run {run + 1}: {measured['rps']:,.1f} req/s, "
                    f"p99 {measured['p99_ms']} ms, {measured['orders']} orders, "
                    f"{measured['out_of_stock']} OUT_OF_STOCK, failures {measured['failures']}"
                )
            latency = load(opts.latency_connections, opts.latency_duration_s)
            result.peak_rss_mb = round(server.peak_rss_kb() / 1024, 1)
        time.sleep(0.5)  # the server's backends have exited and reported their counters
        taken, orders = asyncio.run(_stock_taken(db, variant_ids))
        activity_after = database.activity(db)
    finally:
        asyncio.run(_clean_up(db))
    everything = [*runs, latency]
    requests = sum(r["requests"] for r in runs)
    result.rps_runs = [r["rps"] for r in runs]
    result.requests_measured = requests
    failures: Counter[str] = Counter()
    for r in everything:
        failures.update(r["failures"])
    result.failed_requests = sum(failures.values())
    if requests:
        result.cpu_ms_per_request = round(cpu * 1000 / requests, 3)
        result.db_cpu_ms_per_request = round(db_cpu * 1000 / requests, 3)
    result.p50_ms, result.p99_ms = latency["p50_ms"], latency["p99_ms"]
    result.latency_connections, result.latency_rps = opts.latency_connections, latency["rps"]
    served = len(customers) + sum(r["requests"] for r in everything)
    if served:
        result.pg_sessions_per_100 = round(
            (activity_after[0] - activity_before[0]) * 100 / served, 2
        )
        result.pg_xacts_per_request = round((activity_after[1] - activity_before[1]) / served, 2)
    result.checkout = {
        "variants": len(variant_ids),
        "stock_each": STOCK,
        "connections": opts.connections,
        "runs": runs,
        "latency": latency,
        "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
        "orders_per_s_median": statistics.median(r["orders_per_s"] for r in runs),
        "out_of_stock": sum(r["out_of_stock"] for r in everything),
        "client_cpu_ms_per_request": statistics.median(
            r["client_cpu_ms_per_request"] or 0 for r in runs
        ),
        "failures": dict(failures),
        # Every order reserved one unit: the database must agree with the answers (warm-up included).
        "units_reserved": taken,
        "orders_in_db": orders,
    }
    if taken != orders:
        result.error = f"stock reserved ({taken}) differs from orders written ({orders})"
    result.ran = True
    say(
        f"{workload.key}: median {result.rps:,.1f} req/s, p99 {result.checkout['p99_ms_median']} ms "
        f"at c{opts.connections}; p50 {result.p50_ms} / p99 {result.p99_ms} ms at "
        f"c{opts.latency_connections}; OUT_OF_STOCK {result.checkout['out_of_stock']}"
    )
