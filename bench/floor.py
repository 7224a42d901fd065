"""W6, the floor: W1's SQL statements issued with raw asyncpg, no HTTP and no GraphQL.

One "set" is what W1 asks of PostgreSQL, in the same order: the page of published
products by name, their categories, those categories' parents, their variants and their
images (5 statements, written by hand to match what shopgraph's loaders emit, with
`= ANY($1)` for the id lists). Sets run back to back in `concurrency` asyncio tasks over
one pool of 10 connections (shopgraph's pool size); each set takes one connection.

Run as a script, it prints one JSON object: sets per second over the measured window,
latency percentiles per set, this process's CPU time in that window, and its peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

POOL_SIZE = 10
PAGE_SIZE = 20

PRODUCTS_PAGE = """
SELECT id, category_id, slug, name, description, is_published, currency, price_min_minor,
       price_max_minor, rating_count, rating_average, created_at, updated_at
FROM products
WHERE is_published = true
ORDER BY name ASC, id ASC
LIMIT $1
"""
CATEGORIES_BY_ID = """
SELECT id, parent_id, slug, name, description, position, created_at
FROM categories
WHERE id = ANY($1::integer[])
"""
VARIANTS_BY_PRODUCT = """
SELECT id, product_id, sku, name, price_minor, currency, stock, attributes, position
FROM product_variants
WHERE product_id = ANY($1::integer[])
ORDER BY product_id, position, id
"""
IMAGES_BY_PRODUCT = """
SELECT id, product_id, url, alt, position
FROM product_images
WHERE product_id = ANY($1::integer[])
ORDER BY product_id, position, id
"""


@dataclass(frozen=True, slots=True)
class FloorResult:
    """What one measured window of the floor gave."""

    sets: int
    elapsed_s: float
    sets_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    total_sets: int
    peak_rss_kb: int


async def listing_set(connection: asyncpg.Connection) -> int:
    """Run W1's 5 statements in sequence; returns how many rows came back."""
    page = await connection.fetch(PRODUCTS_PAGE, PAGE_SIZE + 1)
    shown = page[:PAGE_SIZE]
    product_ids = [row["id"] for row in shown]
    category_ids = sorted({row["category_id"] for row in shown if row["category_id"] is not None})
    categories = await connection.fetch(CATEGORIES_BY_ID, category_ids)
    parent_ids = sorted({row["parent_id"] for row in categories if row["parent_id"] is not None})
    parents = await connection.fetch(CATEGORIES_BY_ID, parent_ids)
    variants = await connection.fetch(VARIANTS_BY_PRODUCT, product_ids)
    images = await connection.fetch(IMAGES_BY_PRODUCT, product_ids)
    return len(page) + len(categories) + len(parents) + len(variants) + len(images)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool reset hook: these reads change no session state, so nothing to reset."""


async def open_pool(dsn: str) -> asyncpg.Pool:
    """A pool of POOL_SIZE connections, without the reset round trip on release."""
    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_keep_session
    )
    assert pool is not None
    return pool


async def run_once(dsn: str, before_measured: Callable[[], None]) -> int:
    """Two sets on one pooled connection, calling before_measured between them (to count SQL)."""
    pool = await open_pool(dsn)
    try:
        async with pool.acquire() as connection:
            await listing_set(connection)  # prepares the statements, loads type codecs
            before_measured()
            return await listing_set(connection)
    finally:
        await pool.close()


async def _phase(pool: asyncpg.Pool, concurrency: int, seconds: float) -> list[float]:
    """Run sets from `concurrency` tasks for `seconds`; the latency of each set, in seconds."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker() -> None:
        while (started := time.perf_counter()) < deadline:
            async with pool.acquire() as connection:
                await listing_set(connection)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of values (share in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))
    return ordered[rank]


async def measure(dsn: str, *, concurrency: int, seconds: float, warmup_s: float) -> FloorResult:
    """Warm up, then measure one window of sets."""
    pool = await open_pool(dsn)
    try:
        warm = await _phase(pool, concurrency, warmup_s) if warmup_s > 0 else []
        cpu_before = time.process_time()
        started = time.perf_counter()
        latencies = await _phase(pool, concurrency, seconds)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    finally:
        await pool.close()
    return FloorResult(
        sets=len(latencies),
        elapsed_s=round(elapsed, 3),
        sets_per_s=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
        cpu_s=round(cpu, 3),
        total_sets=len(latencies) + len(warm),
        peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure one window and print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", required=True, help="postgresql://... of the seeded database")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds run before measuring")
    args = parser.parse_args(argv)
    result = measure(
        args.dsn, concurrency=args.concurrency, seconds=args.duration, warmup_s=args.warmup
    )
    payload: dict[str, Any] = asdict(_run(result))
    sys.stdout.write(json.dumps(payload) + "\n")
    return 0


def _run(coroutine: Coroutine[Any, Any, FloorResult]) -> FloorResult:
    """Run on uvloop, as the servers do (asyncio's own loop when uvloop is missing)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    sys.exit(main())
