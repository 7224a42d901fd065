"""`shopgraph serve` in subprocesses, for tests that need several server processes: each on a
free loopback port, stopped when the block ends (a Redis of a test's own: tests/redis_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.settings import Settings
from tests.live_server import free_port

STARTUP_SECONDS = 30
SHOPGRAPH = Path(sys.executable).with_name("shopgraph")
# The settings a test server process is given (others keep their defaults).
PASSED = (
    "database_url",
    "redis_url",
    "env",
    "debug",
    "secret_key",
    "rate_limit_capacity",
    "rate_limit_restore_rate",
    "rate_limit_key_prefix",
    "cache_enabled",
    "cache_key_prefix",
    "redis_failover_pause_seconds",
    "ws_init_timeout_seconds",
    "ws_max_operations",
    "ws_max_connections_per_viewer",
    "stream_keep_alive_seconds",
    "shutdown_drain_seconds",
)


def _environment(settings: Settings, port: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    for name in PASSED:
        value = getattr(settings, name)
        if value is not None:
            env[f"SHOPGRAPH_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    env["SHOPGRAPH_PORT"] = str(port)
    env["SHOPGRAPH_LOG_LEVEL"] = "WARNING"
    return env


@contextmanager
def server_process(settings: Settings) -> Iterator[str]:
    """`shopgraph serve` with these settings; yields its base URL once /health answers."""
    with server_process_handle(settings) as (base, _):
        yield base


@contextmanager
def server_process_handle(settings: Settings) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As `server_process`, with the process too (to signal it)."""
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below; the server writes it)
    process = subprocess.Popen(
        [str(SHOPGRAPH), "serve", "--port", str(port)],
        env=_environment(settings, port),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"shopgraph serve exited: {process.stderr.read().decode()[-2000:]}"
                )  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"shopgraph serve did not start on port {port}")
            time.sleep(0.1)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
