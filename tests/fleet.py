"""Several `shopgraph serve` processes behind a test nginx running deploy/nginx.conf.

`ServerProcess` is `shopgraph serve` in a subprocess with a handle on it (to send SIGTERM
mid-test); `nginx_proxy` runs the system's nginx binary as a foreground process on
unprivileged loopback ports, with deploy/nginx.conf rewritten into a temporary prefix
(ports, upstreams, pid, logs, temp paths): the system's nginx and its config are never
touched.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.live_server import free_port
from tests.server_processes import SHOPGRAPH, STARTUP_SECONDS, _environment

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX_CONF = DEPLOY / "nginx.conf"
SAMPLE_CERT = DEPLOY / "tls" / "sample.crt"
# Every access-log line: which upstream answered, so a test can tell the processes apart.
LOG_FORMAT = '"$request" $status upstream=$upstream_addr upstream_status=$upstream_status'


def nginx_binary() -> str:
    """The system's nginx; skipped when missing, failed when services are required (CI)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("SHOPGRAPH_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("nginx is required (.ci/run installs Debian's package nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


class ServerProcess:
    """`shopgraph serve` in a subprocess on a free port; `stop()` SIGTERMs it and waits."""

    def __init__(
        self, settings: Settings, *, workers: int = 1, env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [str(SHOPGRAPH), "serve", "--port", str(self.port), "--workers", str(workers)],
            env={**_environment(settings, self.port), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"shopgraph serve exited: {self.log()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"shopgraph serve did not start on port {self.port}")
            time.sleep(0.1)

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def terminate(self) -> None:
        """SIGTERM, without waiting."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STARTUP_SECONDS) -> int:
        """Its exit code (killed after `timeout`)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def stop(self) -> None:
        """SIGTERM and wait; the log is closed."""
        self.terminate()
        try:
            self.wait()
        finally:
            self._log.close()


@contextmanager
def server_processes(
    settings: Settings, count: int, *, env: Mapping[str, str] | None = None
) -> Iterator[list[ServerProcess]]:
    """`count` servers with the same settings, all stopped when the block ends."""
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            started.append(ServerProcess(settings, env=env))
        yield started
    finally:
        for server in started:
            server.stop()


@dataclass(frozen=True)
class Nginx:
    """A running test nginx: where it listens and what it logged."""

    http_port: int
    https_port: int
    prefix: Path

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def access_log(self) -> list[str]:
        path = self.prefix / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


def render_config(
    upstream_ports: Sequence[int], http_port: int, https_port: int, prefix: Path
) -> str:
    """deploy/nginx.conf with the test's ports, upstreams, certificate and paths.

    Only addresses and file locations change; every proxying directive is the file's own.
    """
    text = NGINX_CONF.read_text()
    servers = "\n".join(
        f"        server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;" for port in upstream_ports
    )
    text, upstreams = re.subn(r"(?m)^\s*server 127\.0\.0\.1:800\d [^\n]*\n", "", text)
    assert upstreams >= 2, "deploy/nginx.conf: the upstream servers moved"
    text = text.replace("upstream shopgraph {\n", f"upstream shopgraph {{\n{servers}\n", 1)
    replacements = {
        r"(?m)^\s*listen \[::\]:\d+[^\n]*\n": "",
        r"listen 80;": f"listen 127.0.0.1:{http_port};",
        r"listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        r"pid [^;]+;": f"pid {prefix / 'nginx.pid'};",
        r"error_log [^;]+;": f"error_log {prefix / 'error.log'} info;",
        r"access_log [^;]+;": f"access_log {prefix / 'access.log'} test;",
        r"/etc/shopgraph/tls/": f"{SAMPLE_CERT.parent}/",
    }
    for pattern, replacement in replacements.items():
        text, found = re.subn(pattern, replacement, text)
        assert found, f"deploy/nginx.conf: nothing matches {pattern!r}"
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", f"http {{\n    log_format test '{LOG_FORMAT}';\n{temp}\n", 1)
    if os.geteuid() == 0:
        # As root nginx would run its workers as `nobody`, who cannot use the temporary
        # prefix; the test's workers stay the test's user.
        text = "user root;\n" + text
    return text


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def check_config(prefix: Path, upstream_ports: Sequence[int]) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the rendered config (nothing is started)."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(render_config(upstream_ports, free_port(), free_port(), prefix))
    return subprocess.run(
        [nginx_binary(), "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def nginx_proxy(upstream_ports: Sequence[int], prefix: Path) -> Iterator[Nginx]:
    """nginx in the foreground (`daemon off`) in front of the upstreams until the block ends."""
    binary = nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    http_port, https_port = free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_config(upstream_ports, http_port, https_port, prefix))
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    proxy = Nginx(http_port, https_port, prefix)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (_listening(https_port) and _listening(http_port)):
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"nginx exited: {stderr}{proxy.error_log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not start")
            time.sleep(0.05)
        yield proxy
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: workers finish their requests
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
