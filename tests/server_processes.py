"""`shopgraph serve` in subprocesses, for tests that need several server processes (or a Redis
of their own that they can stop): each on a free loopback port, stopped when the block ends."""

from __future__ import annotations

import os
import shutil
import signal
import socket
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
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def redis_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server of the test's own on a free port, with no persistence; stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    process = start_redis(port)
    try:
        yield port, process
    finally:
        process.kill()
        process.wait()


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """Start redis-server on `port` and wait until it accepts connections."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")
