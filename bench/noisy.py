"""W1n: W1's latency alone, then beside a noisy neighbour flooding from another IP.

The server keeps the production per-IP budget (1,000 points, 50 a second), so the
flooder on 127.0.0.2 is an anonymous caller that admission can throttle. W1's client on
127.0.0.1 is a partner of the tier `bench` (a lifted budget): it stands for the shop's
legitimate traffic, which one IP could never carry under the per-IP budget. Both phases
run on the same server with the same wrk settings and token, alternating alone / flooded
`--runs` times; the medians are reported. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import database
import loadgen
import procs
import report
from servers import BENCH, BENCH_TIER, BIN, WORK, Servers, serving
from workloads import Workload

PARTNER = "bench-w1n"
FLOOD_SOURCE = "127.0.0.2"
LEAD_S = 2.0  # the flood runs this long before wrk starts: its bucket is empty by then
MAX_QUERY_BYTES = 20_000  # the server's default SHOPGRAPH_MAX_QUERY_BYTES


def seconds_needed(warmup_s: float, runs: int, latency_duration_s: float) -> float:
    """About how long W1n takes: partner and server start, warm-up, the pairs of runs."""
    return 15 + warmup_s + runs * (2 * latency_duration_s + LEAD_S + 1.0)


@dataclass(frozen=True)
class Pinning:
    """CPU lists for `taskset`: the server on one core, the load generators on the other."""

    server: str
    clients: str


def pinning() -> Pinning | None:
    """Pin on a machine with at least 2 CPUs this process may use, else not at all."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return Pinning(server=str(cpus[0]), clients=",".join(str(cpu) for cpu in cpus[1:]))


async def _forget_partner(db: database.BenchDatabase) -> None:
    connection = await asyncpg.connect(db.dsn())
    try:
        await connection.execute("DELETE FROM partners WHERE name = $1", PARTNER)
    finally:
        await connection.close()


def create_partner(servers: Servers) -> tuple[str, str]:
    """(client_id, client_secret) of a fresh `bench-w1n` partner of the bench tier."""
    asyncio.run(_forget_partner(servers.db))
    output = procs.run_checked(
        [str(BIN / "shopgraph"), "partners", "create", PARTNER, "--scope", "catalog:read",
         "--tier", BENCH_TIER],
        env=servers.shopgraph_env(ip_budget_lifted=False),
        timeout=60,
    )  # fmt: skip
    values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    if "client_id" not in values or "client_secret" not in values:
        raise RuntimeError(f"`shopgraph partners create` printed no credentials: {output[-300:]}")
    return values["client_id"], values["client_secret"]


def trusted_body(servers: Servers, workload: Workload) -> dict[str, Any]:
    """Register the workload's document for the partner (a partner runs only its trusted
    documents) and return the body that names it by id."""
    digest = hashlib.sha256(workload.query.encode("utf-8")).hexdigest()
    manifest = WORK / "bodies" / f"{workload.key}-manifest.json"
    manifest.write_text(json.dumps({digest: workload.query}), encoding="utf-8")
    procs.run_checked(
        [str(BIN / "shopgraph"), "documents", "add", str(manifest), "--client", PARTNER],
        env=servers.shopgraph_env(ip_budget_lifted=False),
        timeout=60,
    )
    body: dict[str, Any] = {"documentId": f"sha256:{digest}"}
    if workload.variables:
        body["variables"] = workload.variables
    return body


def fetch_token(server: procs.Server, client_id: str, client_secret: str) -> str:
    """An access token for the partner from the server's /oauth/token."""
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    ).encode()
    url = server.url.removesuffix("/graphql") + "/oauth/token"
    with urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def checked(
    server: procs.Server, workload: Workload, body: dict[str, Any], authorization: str
) -> int:
    """POST the workload as the partner; its response size, or RuntimeError unless 200 with data."""
    status, raw = procs.post_json(server.url, body, headers={"Authorization": authorization})
    payload = json.loads(raw) if status == 200 else {}
    if status != 200 or payload.get("errors") or payload.get("data") is None:
        raise RuntimeError(f"{workload.key} answered HTTP {status}: {raw[:300]!r}")
    return len(raw)


def start_flood(
    server: procs.Server, seconds: float, connections: int, mix: str, cpus: str | None
) -> subprocess.Popen[str]:
    """The flooder (bench/flood.py) as its own process, for `seconds`."""
    argv = [
        *(["taskset", "-c", cpus] if cpus else []),
        str(BIN / "python"), str(BENCH / "flood.py"), "--port", str(server.port),
        "--source", FLOOD_SOURCE, "--connections", str(connections),
        "--duration", str(seconds), "--max-query-bytes", str(MAX_QUERY_BYTES), "--mix", mix,
    ]  # fmt: skip
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_flood(process: subprocess.Popen[str], seconds: float) -> dict[str, Any]:
    """The flooder's summary once it has ended."""
    out, err = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        raise RuntimeError(f"the flooder exited with {process.returncode}: {err.strip()[-500:]}")
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


@dataclass
class Phase:
    """One latency run of W1, alone or beside the flood."""

    wrk: loadgen.WrkResult
    server_cpu_pct: float
    flood: dict[str, Any] | None = None


@dataclass(frozen=True)
class Flood:
    """How the neighbour floods: its connections and mix (bench/flood.py)."""

    connections: int
    mix: str


def measure(
    wrk: str,
    server: procs.Server,
    body_file: Path,
    authorization: str,
    *,
    connections: int,
    seconds: float,
    flood: Flood | None,
    pin: Pinning | None,
) -> Phase:
    """One W1 latency run, beside the flood when one is given."""
    clients = pin.clients if pin else None
    flooder = None
    flood_seconds = LEAD_S + seconds + 1.0  # it outlasts wrk on both sides
    if flood is not None:
        flooder = start_flood(server, flood_seconds, flood.connections, flood.mix, clients)
        time.sleep(LEAD_S)
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    result = loadgen.run_wrk(
        wrk, server.url, body_file, connections=connections, duration_s=seconds,
        authorization=authorization, cpus=clients,
    )  # fmt: skip
    cpu_pct = (server.cpu_seconds() - cpu_before) * 100 / (time.monotonic() - started)
    summary = finish_flood(flooder, flood_seconds) if flooder is not None else None
    return Phase(result, round(cpu_pct, 1), summary)


def noisy_workload(
    opts: Any, servers: Servers, wrk: str, workload: Workload, result: report.WorkloadResult
) -> None:
    """W1n: pairs of W1 latency runs, alone then flooded, on one fresh server; medians."""
    body_file = WORK / "bodies" / f"{workload.key}.json"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    client_id, client_secret = create_partner(servers)
    body = trusted_body(servers, workload)
    body_file.write_text(json.dumps(body), encoding="utf-8")
    pin = pinning() if opts.pin else None
    start = lambda: servers.shopgraph(ip_budget_lifted=False)  # noqa: E731
    with serving(servers, start) as server:
        if pin is not None:
            for pid in server.pids:
                os.sched_setaffinity(pid, {int(pin.server)})
        authorization = f"Bearer {fetch_token(server, client_id, client_secret)}"
        result.response_bytes = checked(server, workload, body, authorization)
        if opts.warmup_s > 0:
            loadgen.run_wrk(
                wrk, server.url, body_file, connections=opts.latency_connections,
                duration_s=opts.warmup_s, authorization=authorization,
                cpus=pin.clients if pin else None,
            )  # fmt: skip
        alone: list[Phase] = []
        flooded: list[Phase] = []
        flood = Flood(opts.flood_connections, opts.flood_mix)
        for run in range(opts.runs):
            for phases, beside in ((alone, None), (flooded, flood)):
                phase = measure(
                    wrk, server, body_file, authorization,
                    connections=opts.latency_connections, seconds=opts.latency_duration_s,
                    flood=beside, pin=pin,
                )  # fmt: skip
                phases.append(phase)
                result.failed_requests += phase.wrk.errors
                result.requests_measured += phase.wrk.requests
            say_pair(run, alone[-1], flooded[-1])
        result.peak_rss_mb = round(server.peak_rss_kb() / 1024, 1)
        checked(server, workload, body, authorization)  # still answering correctly after the flood
    result.noisy = summarize(alone, flooded, opts, pin)
    result.p50_ms = result.noisy["flooded"]["p50_ms"]
    result.p99_ms = result.noisy["flooded"]["p99_ms"]
    result.latency_connections = opts.latency_connections
    result.latency_rps = result.noisy["flooded"]["rps"]
    result.ran = True


def say_pair(run: int, alone: Phase, flooded: Phase) -> None:
    """A progress line for one alone / flooded pair."""
    flood = flooded.flood or {}
    print(
        f"[noisy] W1n run {run + 1}: p50 alone {alone.wrk.p50_ms:.2f} ms, flooded "
        f"{flooded.wrk.p50_ms:.2f} ms; W1 {alone.wrk.rps:,.0f} / {flooded.wrk.rps:,.0f} req/s; flood {flood.get('rps', 0):,.0f} req/s "
        f"{flood.get('statuses')}; server CPU {alone.server_cpu_pct}% / {flooded.server_cpu_pct}%",
        file=sys.stderr,
        flush=True,
    )


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def summarize(
    alone: list[Phase], flooded: list[Phase], opts: Any, pin: Pinning | None
) -> dict[str, Any]:
    """Medians of each side, the p50 ratio and the flood's rate and status mix."""

    def side(phases: list[Phase]) -> dict[str, Any]:
        return {
            "p50_ms": _median([p.wrk.p50_ms for p in phases]),
            "p99_ms": _median([p.wrk.p99_ms for p in phases]),
            "rps": _median([p.wrk.rps for p in phases]),
            "server_cpu_pct": _median([p.server_cpu_pct for p in phases]),
            "p50_runs": [round(p.wrk.p50_ms, 2) for p in phases],
            "p99_runs": [round(p.wrk.p99_ms, 2) for p in phases],
        }

    floods = [p.flood for p in flooded if p.flood is not None]
    statuses: dict[str, int] = {}
    for flood in floods:
        for code, count in flood["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    first, then = side(alone), side(flooded)
    # W1's CPU per request from the runs alone; what the server spent beyond W1's requests
    # while flooded went to the flood.
    flood_share = None
    if first["rps"] and then["server_cpu_pct"]:
        w1_cpu_pct = then["rps"] * first["server_cpu_pct"] / first["rps"]
        flood_share = round(max(0.0, 100 * (1 - w1_cpu_pct / then["server_cpu_pct"])), 1)
    return {
        "alone": first,
        "flooded": then,
        "p50_ratio": round(then["p50_ms"] / first["p50_ms"], 2) if first["p50_ms"] else None,
        "target_ratio": 2.0,
        "flood": {
            "source": FLOOD_SOURCE,
            "connections": opts.flood_connections,
            "mix": opts.flood_mix,
            "rps": _median([f["rps"] for f in floods]),
            "rps_runs": [f["rps"] for f in floods],
            "statuses": statuses,
            "mb_sent_per_s": _median([f["mb_sent"] / f["duration_s"] for f in floods]),
            "client_cpu_pct": _median([f["cpu_s"] * 100 / f["duration_s"] for f in floods]),
            "errors": sum(f["errors"] for f in floods),
            "share_of_server_cpu_pct": flood_share,
        },
        "pinned": None if pin is None else {"server": pin.server, "clients": pin.clients},
    }
