"""The command line of bench/run.py (README: Options)."""

from __future__ import annotations

import argparse
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import flood
from servers import BENCH

RESULTS = BENCH / "results"


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
