"""Results: one record per workload, written as results.json and a markdown table."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WorkloadResult:
    """Everything measured for one workload (None where it was not measured)."""

    key: str
    title: str
    role: str
    ran: bool = False
    error: str | None = None
    rps_runs: list[float] = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_connections: int | None = None
    latency_rps: float | None = None
    statements: int | None = None
    statements_data: int | None = None
    statements_text: list[str] = field(default_factory=list)
    app_statement_count: int | None = None
    cpu_ms_per_request: float | None = None
    db_cpu_ms_per_request: float | None = None
    peak_rss_mb: float | None = None
    pg_sessions_per_100: float | None = None
    pg_xacts_per_request: float | None = None
    fields: int | None = None
    response_bytes: int | None = None
    failed_requests: int = 0
    requests_measured: int = 0
    noisy: dict[str, Any] | None = None  # W1n: alone and flooded (bench/noisy.py summarize)
    # shopgraph: extensions.debug.cache of the counted request (which caches it used).
    cache_debug: dict[str, Any] | None = None
    # W1 and its variants: how the body was found equal to the uncached listing's.
    body_check: str | None = None
    checkout: dict[str, Any] | None = None  # W7, W7s: per-run figures (bench/checkout.py)

    @property
    def rps(self) -> float:
        """The headline number: median requests/s of the throughput runs (0 when none ran)."""
        return round(statistics.median(self.rps_runs), 1) if self.rps_runs else 0.0


def ratio(results: list[WorkloadResult], top: str, bottom: str) -> float | None:
    """rps(top) / rps(bottom), when both ran."""
    by_key = {result.key: result for result in results}
    a, b = by_key.get(top), by_key.get(bottom)
    if a is None or b is None or not a.rps or not b.rps:
        return None
    return round(a.rps / b.rps, 3)


# The first row is the headline: shopgraph against PostGraphile 5 (W5); W5b is
# PostGraphile 4, kept so that runs before and after the peer changed compare.
HEADLINE = [
    ("W1", "W5", "storefront listing: shopgraph / PostGraphile 5"),
    ("W1", "W5b", "storefront listing: shopgraph / PostGraphile 4"),
    ("W4", "W0", "`{ __typename }`: shopgraph / bare Starlette"),
    ("W1", "W6", "storefront listing: shopgraph / raw asyncpg floor"),
    ("W5", "W6", "storefront listing: PostGraphile 5 / raw asyncpg floor"),
    ("W5b", "W6", "storefront listing: PostGraphile 4 / raw asyncpg floor"),
    ("W5", "W5b", "storefront listing: PostGraphile 5 / PostGraphile 4"),
    ("W2", "W5", "product page (shopgraph) / listing (PostGraphile 5)"),
    ("W1c", "W5", "storefront listing, no caches: shopgraph / PostGraphile 5"),
    ("W1e", "W5", "storefront listing, entity-cached: shopgraph / PostGraphile 5"),
    ("W1r", "W5", "storefront listing, response-cached: shopgraph / PostGraphile 5"),
    ("W1r", "W0", "storefront listing, response-cached: shopgraph / bare Starlette"),
    ("W0r", "W0", "bare Starlette answering from one Redis GET / bare Starlette"),
    ("W1r", "W0r", "storefront listing, response-cached / bare Starlette + one Redis GET"),
    ("W1e", "W1c", "storefront listing: entity cache / no caches"),
    ("W1r", "W1c", "storefront listing: response cache / no caches"),
]

# Issue 10's targets for the response-cached listing, measured in the same run.
TARGETS = [("W1r", "W5", 5.0), ("W1r", "W0", 0.35)]


def targets(results: list[WorkloadResult]) -> list[dict[str, Any]]:
    """Each target's ratio, its minimum and PASS / FAIL (None: not measured in this run)."""
    rows = []
    for top, bottom, minimum in TARGETS:
        value = ratio(results, top, bottom)
        verdict = None if value is None else ("PASS" if value >= minimum else "FAIL")
        rows.append(
            {"ratio": f"{top}/{bottom}", "value": value, "min": minimum, "verdict": verdict}
        )
    return rows


def _caches(result: WorkloadResult) -> str:
    """'-', or the counted request's cache use: `entity 120/0, response hit`."""
    stats = result.cache_debug
    if not stats:
        return "-"
    entity = stats.get("entity") or {}
    return (
        f"entity {entity.get('hits', 0)}/{entity.get('misses', 0)}, "
        f"response {stats.get('response') or 'not asked'}"
    )


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _statements(result: WorkloadResult) -> str:
    if result.statements is None:
        return "-"
    control = result.statements - (result.statements_data or 0)
    text = str(result.statements_data) + (f" (+{control} control)" if control else "")
    if result.app_statement_count is not None and result.app_statement_count != result.statements:
        text += f" [app: {result.app_statement_count}]"
    return text


def noisy_section(result: WorkloadResult, config: dict[str, Any]) -> list[str]:
    """The W1n section: W1 alone and beside the flood, the p50 ratio, what the flood got back."""
    noisy = result.noisy or {}
    alone, flooded, flood = noisy["alone"], noisy["flooded"], noisy["flood"]
    ratio_value = noisy["p50_ratio"]
    verdict = (
        "-"
        if ratio_value is None
        else ("within" if ratio_value <= noisy["target_ratio"] else "**not** within")
    )
    p99_ratio = flooded["p99_ms"] / alone["p99_ms"] if alone["p99_ms"] else None
    pinned = noisy.get("pinned")
    where = (
        f"server pinned to CPU {pinned['server']}, wrk and the flooder to CPU {pinned['clients']}"
        if pinned
        else "nothing pinned"
    )
    total = sum(flood["statuses"].values()) or 1
    mix = ", ".join(
        f"{code} {count:,} ({count * 100 / total:.1f}%)"
        for code, count in sorted(flood["statuses"].items(), key=lambda item: -item[1])
    )

    def row(name: str, side: dict[str, Any]) -> str:
        runs = ", ".join(f"{value:.1f}" for value in side["p50_runs"])
        return (
            f"| {name} | **{side['p50_ms']:.2f}** | {side['p99_ms']:.2f} | {runs} "
            f"| {side['rps']:,.1f} | {side['server_cpu_pct']:.0f}% |"
        )

    return [
        "",
        f"## Noisy neighbour ({result.key})",
        "",
        f"W1 from 127.0.0.1 as a partner of a lifted tier, `wrk -t1 -c{config['latency_connections']}` "
        f"for {config['latency_duration_s']} s, alone and then while {flood['source']} floods the "
        f"same server over {flood['connections']} connections as an anonymous caller on the default "
        f"per-IP budget (mix `{flood.get('mix', '-')}`); {len(alone['p50_runs'])} pair(s), "
        f"medians; {where}.",
        "",
        "| W1 | p50 ms | p99 ms | p50 runs | W1 req/s | server CPU |",
        "|---|---|---|---|---|---|",
        row("alone", alone),
        row("beside the flood", flooded),
        "",
        f"**p50 beside the flood / alone: {_number(ratio_value, 2)}** ({verdict} the "
        f"{noisy['target_ratio']:.0f}x target); p99: {_number(p99_ratio, 2)}x.",
        "",
        f"The flood: **{flood['rps']:,.0f} req/s** (runs: "
        f"{', '.join(f'{value:,.0f}' for value in flood['rps_runs'])}), "
        f"{flood['mb_sent_per_s']:,.1f} MB/s sent, flooder CPU {flood['client_cpu_pct']:.0f}% of a "
        f"core, {flood['errors']} connection errors; answers: {mix}. Its share of the "
        f"server's CPU while flooding (what W1's requests, at their CPU cost alone, leave "
        f"over): {_number(flood.get('share_of_server_cpu_pct'))}%.",
    ]


def _listing_by_cache(results: list[WorkloadResult]) -> list[str]:
    """The W1 variants side by side: throughput, latency, SQL, caches used, body check."""
    rows = [r for r in results if r.key in ("W1", "W1c", "W1e", "W1r")]
    if not any(r.key != "W1" for r in rows):
        return []
    lines = [
        "",
        "## The storefront listing by cache layer",
        "",
        "Caches: the counted (21st) request's `extensions.debug.cache`, entity hits/misses and "
        "the response cache's answer. Body: how the body was checked against the uncached "
        "listing's (`bytes = W1c`: the production bodies before and after the load equal the "
        "uncached server's byte for byte up to `extensions`, which carry the request's cost and "
        "throttle status; `data = uncached`: the data, parsed, equals the count phase's).",
        "",
        "| | req/s | p50 ms | p99 ms | SQL/req | caches (counted request) | body | server CPU ms/req "
        "| PG xacts/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r.ran:
            lines.append(f"| {r.key} | did not run: {r.error or 'skipped'} | | | | | | | |")
            continue
        lines.append(
            f"| {r.key} | **{r.rps:,.0f}** | {_number(r.p50_ms, 2)} | {_number(r.p99_ms, 2)} "
            f"| {_statements(r)} | {_caches(r)} | {r.body_check or '-'} "
            f"| {_number(r.cpu_ms_per_request, 3)} | {_number(r.pg_xacts_per_request, 2)} |"
        )
    return lines


def _checkout_section(results: list[WorkloadResult]) -> list[str]:
    """W7 and W7s: req/s and p99 at the throughput concurrency, OUT_OF_STOCK, the stock check."""
    ran = [result for result in results if result.ran and result.checkout]
    if not ran:
        return []
    lines = [
        "",
        "## Checkout (W7: one hot variant, W7s: spread)",
        "",
        "Each request checks out a prepared one-line cart of a signed-in customer (test "
        "gateway, `tok_success`, fresh idempotency key), one closed-loop customer per "
        "connection (bench/checkout_load.py, httpx). Stock of every chosen variant: "
        f"{ran[0].checkout['stock_each']:,} (restored afterwards). Load generator CPU per "
        "request (median of the runs, its start-up included): "
        + ", ".join(
            f"{r.key} {(r.checkout or {}).get('client_cpu_ms_per_request')} ms" for r in ran
        )
        + ".",
        "",
        "| | variants | connections | req/s (runs) | orders/s | p50 ms | p99 ms | OUT_OF_STOCK "
        "| other failures | units reserved = orders |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in ran:
        co = result.checkout or {}
        runs = ", ".join(f"{r['rps']:,.0f}" for r in co["runs"])
        p50 = statistics.median(r["p50_ms"] for r in co["runs"])
        same = "yes" if co["units_reserved"] == co["orders_in_db"] else "**no**"
        lines.append(
            f"| {result.key} | {co['variants']:,} | {co['connections']} | **{result.rps:,.0f}** "
            f"({runs}) | {co['orders_per_s_median']:,.0f} | {p50:.1f} | {co['p99_ms_median']:.1f} "
            f"| {co['out_of_stock']} | {co['failures'] or 0} "
            f"| {same} ({co['units_reserved']:,} / {co['orders_in_db']:,}) |"
        )
        latency = co["latency"]
        lines.append(
            f"| {result.key} | {co['variants']:,} | {latency['connections']} "
            f"| {latency['rps']:,.0f} | {latency['orders_per_s']:,.0f} | {latency['p50_ms']:.1f} "
            f"| {latency['p99_ms']:.1f} | {latency['out_of_stock']} | | |"
        )
    return lines


def write_json(path: Path, meta: dict[str, Any], results: list[WorkloadResult]) -> None:
    """results.json: meta, headline ratios and every measured number."""
    ratios = {f"{top}/{bottom}": ratio(results, top, bottom) for top, bottom, _ in HEADLINE}
    for result in results:
        if result.ran and result.noisy:
            ratios[f"{result.key} p50 flooded/alone"] = result.noisy["p50_ratio"]
    payload = {
        "meta": meta,
        "ratios": ratios,
        "targets": targets(results),
        "workloads": [{**asdict(result), "rps": result.rps} for result in results],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def write_markdown(path: Path, meta: dict[str, Any], results: list[WorkloadResult]) -> None:
    """results.md: headline ratios, the table, then the facts needed to compare runs."""
    config = meta["config"]
    lines = [
        "# shopgraph benchmark results",
        "",
        f"Run on {meta['date']} by `{meta['command']}` in {meta['total_seconds']:.0f} s. "
        "Absolute numbers move with the machine: read the ratios.",
        "",
        "## Headline ratios (requests/s)",
        "",
        "| ratio | value | meaning |",
        "|---|---|---|",
    ]
    for top, bottom, meaning in HEADLINE:
        value = ratio(results, top, bottom)
        lines.append(f"| {top}/{bottom} | {'-' if value is None else f'{value:.2f}'} | {meaning} |")
    lines += [
        "",
        "## Targets (issue 10: the response-cached listing, same run)",
        "",
        "| ratio | value | target | verdict |",
        "|---|---|---|---|",
    ]
    for row in targets(results):
        shown = "-" if row["value"] is None else f"{row['value']:.2f}"
        lines.append(
            f"| {row['ratio']} | {shown} | >= {row['min']:g} | {row['verdict'] or 'not measured'} |"
        )
    lines += [
        "",
        "## Workloads",
        "",
        f"req/s: median of {config['runs']} runs of {config['duration_s']} s at "
        f"{config['connections']} connections (runs in brackets); p50/p99: one "
        f"{config['latency_duration_s']} s run at {config['latency_connections']} connections; "
        "SQL: statements PostgreSQL executed for one request (wire count); CPU: server process "
        "(W6: the asyncpg client) and PostgreSQL backends, per request; RSS: server peak (VmHWM); "
        "PG xacts/req and conns/100 req: transactions ended and sessions opened in the database "
        "(pg_stat_database) over the server's whole life, per request it answered.",
        "",
        "| | workload | req/s | runs | x W5 (PG5) | p50 ms | p99 ms | SQL/req | server CPU ms/req "
        "| PG CPU ms/req | peak RSS MB | PG xacts/req | PG conns/100 req | fields | bytes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    peer = next((result.rps for result in results if result.key == "W5"), 0.0)
    for result in results:
        if result.ran and result.noisy:
            lines.append(
                f'| {result.key} | {result.title} | see "Noisy neighbour" below '
                "| | | | | | | | | | | | |"
            )
            continue
        if not result.ran:
            lines.append(
                f"| {result.key} | {result.title} | did not run: {result.error or 'skipped'} "
                "| | | | | | | | | | | | |"
            )
            continue
        runs = ", ".join(f"{value:,.0f}" for value in result.rps_runs)
        versus = f"{result.rps / peer:.2f}" if peer and result.rps else "-"
        lines.append(
            f"| {result.key} | {result.title} | **{result.rps:,.0f}** | {runs} | {versus} "
            f"| {_number(result.p50_ms, 2)} | {_number(result.p99_ms, 2)} | {_statements(result)} "
            f"| {_number(result.cpu_ms_per_request, 3)} | {_number(result.db_cpu_ms_per_request, 3)} "
            f"| {_number(result.peak_rss_mb)} | {_number(result.pg_xacts_per_request, 2)} "
            f"| {_number(result.pg_sessions_per_100)} | {result.fields if result.fields is not None else '-'} "
            f"| {result.response_bytes if result.response_bytes is not None else '-'} |"
        )
    for result in results:
        if result.ran and result.noisy:
            lines += noisy_section(result, config)
    lines += _listing_by_cache(results)
    lines += _checkout_section(results)
    failed = [result for result in results if result.ran and result.failed_requests]
    if failed:
        lines += ["", "Failed requests (wrk errors, non-2xx or timeouts) during the runs:"]
        lines += [
            f"- {result.key}: {result.failed_requests} of {result.requests_measured}"
            for result in failed
        ]
    errors = [result for result in results if result.ran and result.error]
    if errors:
        lines += ["", "Partly measured:"]
        lines += [f"- {result.key}: {result.error}" for result in errors]
    machine = meta["machine"]
    if machine["busy_before_pct"] > 10:
        lines += [
            "",
            f"**Warning**: the machine was already {machine['busy_before_pct']}% busy before the run "
            "(other processes); every number here is lower than on an idle machine.",
        ]
    lines += [
        "",
        "## Machine and versions",
        "",
        f"- CPU: {machine['cpu_model']}, nproc {machine['nproc']}, memory {machine['memory_gb']} GB, "
        f"kernel {machine['kernel']}",
        f"- Machine busy before the run: {machine['busy_before_pct']}% of all CPU over 1 s "
        f"(load average {machine['loadavg']}); other work on the machine skews the numbers",
        *(f"- {name}: {version}" for name, version in meta["versions"].items()),
        f"- Database: {meta['database']}",
        "",
        "## SQL statements per request (as PostgreSQL received them)",
        "",
    ]
    for result in results:
        if result.statements_text:
            lines.append(f"- {result.key}:")
            lines += [
                f"  - `{text[:160]}{'...' if len(text) > 160 else ''}`"
                for text in result.statements_text
            ]
        elif result.statements == 0:
            lines.append(f"- {result.key}: none")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
