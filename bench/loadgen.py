"""The load generator: wrk on loopback, POSTing one JSON body, its summary read back as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import run_checked

POST_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
MARKER = "WRK_JSON "


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run."""

    connections: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    bytes: int


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package `wrk` when it is missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing: install Debian's package `wrk` (apt-get install wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked(["apt-get", "update", "-qq"], env=env, timeout=300)
    run_checked(["apt-get", "install", "-y", "-qq", "wrk"], env=env, timeout=300)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get install wrk ran but wrk is still not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    """wrk's own version line."""
    completed = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    text = (completed.stdout + completed.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    *,
    connections: int,
    duration_s: float,
    authorization: str | None = None,
    cpus: str | None = None,
) -> WrkResult:
    """POST body_file to url from one wrk thread with `connections` connections for duration_s.

    `authorization`: an Authorization header to send; `cpus`: a CPU list for `taskset -c`.
    """
    argv = [
        *(["taskset", "-c", cpus] if cpus else []),
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(POST_SCRIPT),
        url,
    ]
    env = {**os.environ, "WRK_BODY_FILE": str(body_file)}
    if authorization:
        env["WRK_AUTHORIZATION"] = authorization
    output = run_checked(argv, env=env, timeout=duration_s + 60)
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    data = json.loads(line[len(MARKER) :])
    duration = data["duration_us"] / 1e6
    errors = sum(
        data[key]
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return WrkResult(
        connections=connections,
        requests=data["requests"],
        duration_s=round(duration, 3),
        rps=round(data["requests"] / duration, 1) if duration else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        bytes=data["bytes"],
    )
