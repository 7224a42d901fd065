"""Subscription fan-out: N WebSocket subscribers on loopback, one event at a time.

    .venv/bin/python bench/subscribers.py [--subscribers 1000] [--events 5]

Starts `shopgraph serve` (one process, PostgreSQL + Redis, as in production) on a small
seeded database of its own, opens N graphql-transport-ws connections from one Node
process (bench/subscribers.mjs: Node's own WebSocket, whose cost per message is small next
to the server's), each subscribed to `productUpdated` of one product, and reports:

- memory per idle subscriber: the server's resident memory (VmRSS) with the N
  subscribers connected and idle, less its resident memory before they connected,
  divided by N;
- delivery latency: for each event (a staff rename through HTTP, one at a time), the time
  from sending the mutation to each subscriber's receipt of its `next` message; p50, p99
  and the maximum over every subscriber and event.

The load generator shares the machine's cores with the server (and with PostgreSQL and
Redis): the latencies include the clients' own time to read N messages. Needs Node.js
(20 or newer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import Server, free_port, run_checked, status_kb  # noqa: E402

SHOPGRAPH = ROOT / ".venv" / "bin" / "shopgraph"
SUBSCRIPTION = "subscription ($id: ID!) { productUpdated(productId: $id) { id name } }"
LOGIN = """mutation ($input: LoginInput!) { login(input: $input) { accessToken userErrors { message } } }"""
RENAME = """mutation ($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { userErrors { message } }
}"""
TARGET_P99_MS = 100.0
TARGET_KB_PER_SUBSCRIBER = 50.0


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--database", default="shopgraph_bench_subscribers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--pause", type=float, default=1.0, help="Seconds between events.")
    parser.add_argument(
        "--workers", type=int, default=1, help="`serve --workers` (subscribers spread over them)."
    )
    return parser.parse_args()


def _prepare(database: str) -> str:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", database], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    env = {**os.environ, "SHOPGRAPH_DATABASE_URL": url}
    run_checked([str(SHOPGRAPH), "migrate"], env=env, timeout=120)
    run_checked(
        [str(SHOPGRAPH), "seed", "--products", "200", "--random-seed", "3"], env=env, timeout=300
    )
    return url


def _server(database_url: str, redis_url: str, subscribers: int, workers: int, log: Path) -> Server:
    port = free_port()
    argv = [str(SHOPGRAPH), "serve", "--port", str(port), "--workers", str(workers)]
    server = Server("shopgraph", argv, port, log)
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")},
        "SHOPGRAPH_DATABASE_URL": database_url,
        "SHOPGRAPH_REDIS_URL": redis_url,
        "SHOPGRAPH_LOG_LEVEL": "WARNING",
        # One IP opens every connection: lift the per-viewer cap and the rate limit.
        "SHOPGRAPH_WS_MAX_CONNECTIONS_PER_VIEWER": str(subscribers + 10),
        "SHOPGRAPH_RATE_LIMIT_CAPACITY": "10000000",
        "SHOPGRAPH_RATE_LIMIT_RESTORE_RATE": "1000000",
        "SHOPGRAPH_STREAM_KEEP_ALIVE_SECONDS": "600",
        # Every open WebSocket counts against uvicorn's concurrency limit (default 1000).
        "SHOPGRAPH_LIMIT_CONCURRENCY": str(subscribers + 100),
    }
    subprocess.run(["redis-cli", "-u", redis_url, "FLUSHDB"], check=True, capture_output=True)
    server.start(env, ROOT)
    return server


async def _graphql(
    http: httpx.AsyncClient,
    url: str,
    query: str,
    variables: dict[str, Any],
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(url, json={"query": query, "variables": variables}, headers=headers)
    response.raise_for_status()
    return response.json()["data"]  # type: ignore[no-any-return]


async def _measure(options: argparse.Namespace, server: Server) -> dict[str, Any]:
    graphql = server.url
    async with httpx.AsyncClient(timeout=30) as http:
        from app.services.seed import DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD

        credentials = {"email": DEMO_STAFF_EMAIL, "password": DEMO_STAFF_PASSWORD}
        login = await _graphql(http, graphql, LOGIN, {"input": credentials})
        token = login["login"]["accessToken"]
        first = await _graphql(
            http, graphql, "{ products(first: 1) { edges { node { id } } } }", {}
        )
        product_id = first["products"]["edges"][0]["node"]["id"]
    print(f"server pid {server.pids[0]}", flush=True)
    await asyncio.sleep(1.0)
    rss_before_kb = _rss_kb(server)
    clients = await asyncio.create_subprocess_exec(
        "node", "--experimental-websocket", "--no-warnings", str(ROOT / "bench" / "subscribers.mjs"),
        graphql, product_id, token, str(options.subscribers), str(options.events),
        str(int(options.pause * 1000)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert clients.stdin is not None and clients.stdout is not None
    ready = json.loads(await asyncio.wait_for(clients.stdout.readline(), 120))
    assert ready == {"ready": options.subscribers}, ready
    await asyncio.sleep(3.0)  # every subscription started, then idle
    rss_idle_kb = _rss_kb(server)
    cpu_before = server.cpu_seconds()
    clients.stdin.write(b"go\n")
    await clients.stdin.drain()
    latencies_ms: list[float] = []
    per_event: list[dict[str, float]] = []
    for _ in range(options.events):
        event = json.loads(await asyncio.wait_for(clients.stdout.readline(), 60))
        these = event["latencies_ms"]
        latencies_ms += these
        per_event.append(
            {
                "p50_ms": round(_pct(these, 50), 1),
                "p99_ms": round(_pct(these, 99), 1),
                "max_ms": round(max(these), 1),
                "missing": event["missing"],
            }
        )
    cpu_per_event_ms = (server.cpu_seconds() - cpu_before) * 1000 / options.events
    await clients.wait()
    return {
        "subscribers": options.subscribers,
        "workers": options.workers,
        "events": options.events,
        "rss_before_kb": rss_before_kb,
        "rss_idle_kb": rss_idle_kb,
        "kb_per_idle_subscriber": round((rss_idle_kb - rss_before_kb) / options.subscribers, 1),
        "latency_p50_ms": round(_pct(latencies_ms, 50), 1),
        "latency_p99_ms": round(_pct(latencies_ms, 99), 1),
        "latency_max_ms": round(max(latencies_ms), 1),
        "missing": sum(int(event["missing"]) for event in per_event),
        # The server's CPU time per event (the mutation's and the fan-out's), idle pauses
        # included: steadier than latency on a busy machine.
        "server_cpu_ms_per_event": round(cpu_per_event_ms, 1),
        "per_event": per_event,
    }


def _rss_kb(server: Server) -> int:
    """Resident memory of the server's processes (with workers, the supervisor's too: it
    does not change with the subscribers)."""
    return sum(status_kb(pid, "VmRSS") for pid in server.pids)


def _pct(values: list[float], percentile: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[percentile - 1]
        if percentile < 100
        else max(values)
    )


def main() -> None:
    options = _options()
    print(f"preparing {options.database} (200 products)", flush=True)
    database_url = _prepare(options.database)
    log = Path("/tmp") / "shopgraph-bench-subscribers.log"
    server = _server(database_url, options.redis_url, options.subscribers, options.workers, log)
    try:
        result = uvloop.run(_measure(options, server))
    finally:
        server.stop()
    result["targets"] = {
        "latency_p99_ms": TARGET_P99_MS,
        "kb_per_idle_subscriber": TARGET_KB_PER_SUBSCRIBER,
        "p99_met": result["latency_p99_ms"] <= TARGET_P99_MS,
        "memory_met": result["kb_per_idle_subscriber"] <= TARGET_KB_PER_SUBSCRIBER,
    }
    options.results.mkdir(parents=True, exist_ok=True)
    name = (
        "subscribers.json"
        if options.workers == 1
        else f"subscribers-{options.workers}-workers.json"
    )
    (options.results / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
