"""W7's load generator: signed-in customers checking out prepared carts, closed loop.

Run by bench/checkout.py in its own process. It reads a plan (JSON: the GraphQL URL, the
customers' access tokens, the cart tokens), then `--connections` tasks each act as one
customer: take the next unused cart, POST `checkout` with a fresh idempotency key and
`tok_success`, wait for the answer, repeat until `--duration` is over (or the carts run
out). Prints one line `CHECKOUT_JSON {...}`: requests, orders, OUT_OF_STOCK answers, other
failures by kind, and the latency percentiles of every answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

MARKER = "CHECKOUT_JSON "
CHECKOUT = """
mutation Checkout($input: CheckoutInput!) {
  checkout(input: $input) { order { number total { amount } } userErrors { field code } }
}
"""
ADDRESS = {
    "fullName": "Bench Customer",
    "line1": "Lindenstraße 17",
    "city": "Quedlinburg",
    "postalCode": "06484",
    "country": "DE",
}


def percentile(sorted_values: list[float], share: float) -> float:
    """The nearest-rank percentile (0 < share <= 1) of sorted values; 0.0 when there are none."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(share * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def classify(status: int, payload: dict[str, Any] | None) -> str:
    """`ok`, `OUT_OF_STOCK`, or what else went wrong (a userError code, `http-503`, ...)."""
    if status != 200 or payload is None:
        return f"http-{status}"
    if payload.get("errors"):
        codes = {(e.get("extensions") or {}).get("code", "ERROR") for e in payload["errors"]}
        return "graphql-" + ",".join(sorted(codes))
    answer = (payload.get("data") or {}).get("checkout") or {}
    errors = answer.get("userErrors") or []
    if errors:
        return ",".join(sorted({str(error.get("code")) for error in errors}))
    return "ok" if answer.get("order") else "no-order"


async def run(plan: dict[str, Any], connections: int, duration_s: float) -> dict[str, Any]:
    """Drive the checkouts; the summary."""
    carts = iter(plan["carts"])
    customers: list[str] = plan["customers"]
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    exhausted = False
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        started = time.perf_counter()
        deadline = started + duration_s

        async def customer(index: int) -> None:
            nonlocal exhausted
            headers = {
                "Authorization": f"Bearer {customers[index % len(customers)]}",
                "Accept": "application/json",
            }
            while time.perf_counter() < deadline:
                cart = next(carts, None)
                if cart is None:
                    exhausted = True
                    return
                body = {
                    "query": CHECKOUT,
                    "variables": {
                        "input": {
                            "cartToken": cart,
                            "shippingAddress": ADDRESS,
                            "paymentToken": "tok_success",
                            "idempotencyKey": uuid.uuid4().hex,
                        }
                    },
                }
                sent = time.perf_counter()
                try:
                    response = await client.post(plan["url"], json=body, headers=headers)
                    payload = response.json() if response.status_code == 200 else None
                    outcome = classify(response.status_code, payload)
                except (httpx.HTTPError, ValueError) as error:
                    outcome = f"client-{type(error).__name__}"
                latencies.append(time.perf_counter() - sent)
                outcomes[outcome] += 1

        await asyncio.gather(*(customer(index) for index in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    requests = len(latencies)
    return {
        "connections": connections,
        "requests": requests,
        "duration_s": round(elapsed, 3),
        "rps": round(requests / elapsed, 1) if elapsed else 0.0,
        "orders": outcomes["ok"],
        "orders_per_s": round(outcomes["ok"] / elapsed, 1) if elapsed else 0.0,
        "out_of_stock": outcomes["OUT_OF_STOCK"],
        "failures": {k: v for k, v in outcomes.items() if k not in ("ok", "OUT_OF_STOCK")},
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0,
        "carts_exhausted": exhausted,
    }


def main(argv: list[str] | None = None) -> int:
    """Read the plan, run, print the summary line."""
    parser = argparse.ArgumentParser(description="W7's checkout load (bench/checkout.py)")
    parser.add_argument("--plan", required=True, help="JSON: url, customers, carts")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    summary = asyncio.run(run(plan, max(1, args.connections), args.duration))
    sys.stdout.write(MARKER + json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
