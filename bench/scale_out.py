"""W1 from 1 to 2 worker processes behind nginx (issue 12's scale-out target: >= 1.6x).

`.venv/bin/python bench/scale_out.py [--database NAME] [--runs 3] [--duration 8]`: on the
bench database (seeded as for `make bench`), starts every setup at once, each behind its
own nginx running deploy/nginx.conf (rendered by tests/fleet.py: loopback ports, the
sample certificate, a temporary prefix), and loads them with wrk over HTTPS (`-t1`,
`--connections`, W1's body, keep-alive), round after round in turn so that drift in the
machine's other load hits every setup alike:

- `1 worker`: one `shopgraph serve --workers 1`, one upstream;
- `2 workers`: one `shopgraph serve --workers 2` (uvicorn's workers on one socket);
- `2 instances`: two `shopgraph serve --workers 1`, two upstreams (deploy/nginx.conf's shape);
- `direct`: the 1-worker server without nginx, to show what nginx costs.

Servers run as W1's do (production mode, no caches, lifted per-IP budget). The load
generator and nginx share the machine's cores with the workers and PostgreSQL: their CPU
per request is reported beside the servers': the ratio's ceiling is about (cores) x (one
worker's server CPU per request) / (all CPU per request with two). Writes scale_out.{md,json} into
--results (default bench/results).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import database
import facts
import httpx
import loadgen
import procs
from progress import say
from servers import BIN, ROOT, WORK, Servers
from workloads import W1_LISTING

sys.path.insert(0, str(ROOT))
from tests.fleet import Nginx, nginx_proxy


@dataclass
class Setup:
    """One way of serving W1, and what its runs measured."""

    name: str
    url: str = ""
    servers: list[procs.Server] = field(default_factory=list)
    nginx: Nginx | None = None
    rps: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0
    server_cpu: float = 0.0
    nginx_cpu: float = 0.0
    client_cpu: float = 0.0
    db_cpu: float = 0.0
    p99_ms: list[float] = field(default_factory=list)

    def server_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)

    def nginx_seconds(self) -> float:
        if self.nginx is None:
            return 0.0
        master = int((self.nginx.prefix / "nginx.pid").read_text().strip())
        return sum(procs.cpu_seconds(pid) for pid in [master, *procs.children_of(master)])

    def per_request_ms(self, seconds: float) -> float | None:
        return round(seconds * 1000 / self.requests, 3) if self.requests else None

    def summary(self) -> dict[str, object]:
        return {
            "req_s_median": round(statistics.median(self.rps), 1) if self.rps else None,
            "req_s_runs": self.rps,
            "p99_ms_runs": self.p99_ms,
            "errors": self.errors,
            "requests": self.requests,
            "server_cpu_ms_per_req": self.per_request_ms(self.server_cpu),
            "nginx_cpu_ms_per_req": self.per_request_ms(self.nginx_cpu),
            "wrk_cpu_ms_per_req": self.per_request_ms(self.client_cpu),
            "postgres_cpu_ms_per_req": self.per_request_ms(self.db_cpu),
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(setup: Setup, wrk: str, body: Path, opts: argparse.Namespace, db_name: str) -> None:
    """One wrk run against a setup, with every party's CPU over it."""
    before = (
        setup.server_seconds(), setup.nginx_seconds(), _children_cpu(), procs.postgres_cpu(db_name)
    )  # fmt: skip
    run = loadgen.run_wrk(
        wrk, setup.url, body, connections=opts.connections, duration_s=opts.duration
    )
    setup.server_cpu += setup.server_seconds() - before[0]
    setup.nginx_cpu += setup.nginx_seconds() - before[1]
    setup.client_cpu += _children_cpu() - before[2]
    setup.db_cpu += procs.postgres_cpu(db_name).since(before[3])
    setup.rps.append(run.rps)
    setup.p99_ms.append(round(run.p99_ms, 2))
    setup.errors += run.errors
    setup.requests += run.requests
    say(f"{setup.name}: {run.rps:,.1f} req/s, p99 {run.p99_ms:.1f} ms, {run.errors} errors")


def ensure_nginx() -> None:
    """Debian's nginx, installed when missing (as .ci/run does); the system's one is never started."""
    if shutil.which("nginx"):
        return
    if os.geteuid() != 0:
        raise SystemExit("nginx is missing: apt-get install nginx")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    procs.run_checked(["apt-get", "update", "-qq"], env=env, timeout=300)
    procs.run_checked(["apt-get", "install", "-y", "-qq", "nginx"], env=env, timeout=300)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds, write scale_out.{md,json}; 0 when every setup answered without errors."""
    parser = argparse.ArgumentParser(description="W1 with 1 vs 2 workers behind nginx")
    parser.add_argument("--database", default="shopgraph_bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    opts = parser.parse_args(argv)
    machine = facts.machine_facts()
    wrk = loadgen.ensure_wrk()
    ensure_nginx()
    db = database.BenchDatabase("127.0.0.1", 5432, "postgres", opts.database)
    say(database.prepare(db, BIN / "shopgraph", say))
    servers = Servers(db, "redis://127.0.0.1:6379/12")
    body = WORK / "bodies" / "W1-scale-out.json"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_text(json.dumps({"query": W1_LISTING}), encoding="utf-8")
    setups = [Setup("1 worker"), Setup("2 workers"), Setup("2 instances"), Setup("direct")]
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        stack.callback(servers.stop_all)
        one = servers.shopgraph(instance="-a")
        setups[0].servers = setups[3].servers = [one]
        setups[1].servers = [servers.shopgraph(workers=2)]
        setups[2].servers = [servers.shopgraph(instance="-b"), servers.shopgraph(instance="-c")]
        setups[3].url = one.url
        for index, setup in enumerate(setups[:3]):
            ports = [server.port for server in setup.servers]
            setup.nginx = stack.enter_context(nginx_proxy(ports, Path(tmp) / f"nginx{index}"))
            setup.url = f"{setup.nginx.https}/graphql"
        for setup in setups:
            answer = httpx.post(setup.url, json={"query": W1_LISTING}, verify=False, timeout=30)
            if answer.status_code != 200 or "errors" in answer.json():
                raise SystemExit(f"{setup.name}: {answer.status_code} {answer.text[:300]}")
            loadgen.run_wrk(
                wrk, setup.url, body, connections=opts.connections, duration_s=opts.warmup
            )
        for round_ in range(opts.runs):
            say(f"round {round_ + 1} of {opts.runs}")
            for setup in setups:
                measure(setup, wrk, body, opts, opts.database)
    results = {setup.name: setup.summary() for setup in setups}
    base = results["1 worker"]["req_s_median"]
    ratios = {
        name: round(float(results[name]["req_s_median"]) / float(base), 2)  # type: ignore[arg-type]
        for name in ("2 workers", "2 instances", "direct")
        if base and results[name]["req_s_median"]
    }
    meta = {"machine": machine, "options": vars(opts), "ratios_vs_1_worker": ratios}
    out = Path(opts.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_out.json").write_text(json.dumps({**meta, "setups": results}, indent=2) + "\n")
    (out / "scale_out.md").write_text(_markdown(meta, results))
    sys.stdout.write(_markdown(meta, results))
    return 0 if all(setup.errors == 0 for setup in setups) else 1


def _markdown(meta: dict[str, object], results: dict[str, dict[str, object]]) -> str:
    machine = meta["machine"]
    assert isinstance(machine, dict)
    options = meta["options"]
    assert isinstance(options, dict)
    ratios = meta["ratios_vs_1_worker"]
    assert isinstance(ratios, dict)
    lines = [
        "# W1 from 1 to 2 worker processes behind nginx",
        "",
        f"`bench/scale_out.py`: wrk -t1 -c{options['connections']} over HTTPS through nginx "
        f"(deploy/nginx.conf), {options['runs']} rounds of {options['duration']} s, setups in "
        f"turn; {machine['nproc']} cores ({machine['cpu_model']}), "
        f"{machine['busy_before_pct']}% busy before the run (load average {machine['loadavg']}).",
        "",
        "| setup | req/s (median) | runs | x 1 worker | p99 ms | errors | CPU ms/req: server "
        "| nginx | wrk | PostgreSQL |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        runs = ", ".join(f"{value:,.0f}" for value in row["req_s_runs"])  # type: ignore[attr-defined]
        p99 = ", ".join(f"{value:.0f}" for value in row["p99_ms_runs"])  # type: ignore[attr-defined]
        lines.append(
            f"| {name} | **{row['req_s_median']}** | {runs} | {ratios.get(name, '1.00')} "
            f"| {p99} | {row['errors']} | {row['server_cpu_ms_per_req']} "
            f"| {row['nginx_cpu_ms_per_req']} | {row['wrk_cpu_ms_per_req']} "
            f"| {row['postgres_cpu_ms_per_req']} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
