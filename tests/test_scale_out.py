"""Scale-out: several processes behind deploy/nginx.conf, and graceful shutdown on SIGTERM.

nginx is the system's binary (skipped where it is missing, required in CI), run in the
foreground from a temporary prefix (tests/fleet.py). The two-process tests need the
shared PostgreSQL and Redis; the rest also run in the embedded mode.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from websockets.sync.client import connect as ws_connect

from tests.conftest import Backend
from tests.fleet import (
    DEPLOY,
    SAMPLE_CERT,
    ServerProcess,
    check_config,
    nginx_proxy,
    server_processes,
)
from tests.live_server import free_port
from tests.stream_stub import stream_stub

LISTING = {"query": "{ products(first: 3) { edges { node { name } } } }"}
LIFTED = {"rate_limit_capacity": 10_000_000, "rate_limit_restore_rate": 1_000_000}
# After its graceful shutdown uvicorn raises the SIGTERM it caught again, with the default
# handler back: the process ends "killed by SIGTERM", having finished its work first.
STOPPED = (0, -signal.SIGTERM)


def _tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(SAMPLE_CERT))


def _upstreams(log: list[str]) -> Counter[str]:
    """How many requests each upstream answered (the last one tried, after any retry)."""
    answered = (re.search(r"upstream=(.*?) upstream_status=", line) for line in log)
    return Counter(m.group(1).split(", ")[-1] for m in answered if m)


# --- the config and its certificate -------------------------------------------------------


def test_the_deploy_config_passes_nginx_t(tmp_path: Path) -> None:
    checked = check_config(tmp_path / "nginx", [free_port(), free_port()])
    assert checked.returncode == 0, checked.stderr


def test_the_sample_certificate_script_makes_a_certificate_for_localhost(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run([str(DEPLOY / "make-sample-cert.sh"), str(tmp_path)], check=True, timeout=60)
    for path in (tmp_path / "sample.crt", SAMPLE_CERT):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        assert "SAMPLE" in cert.subject.rfc4514_string()
    assert (tmp_path / "sample.key").stat().st_mode & 0o077 == 0


def test_plain_http_is_redirected_to_https(tmp_path: Path) -> None:
    with nginx_proxy([free_port()], tmp_path / "nginx") as proxy:
        response = httpx.get(f"{proxy.http}/graphql?query=%7B__typename%7D")
    assert response.status_code == 301
    assert response.headers["location"] == "https://127.0.0.1/graphql?query=%7B__typename%7D"


# --- streams through nginx (a stub upstream: the subscription transports are separate) ------


def test_event_streams_pass_through_unbuffered(tmp_path: Path) -> None:
    with stream_stub() as port, nginx_proxy([port], tmp_path / "nginx") as proxy:
        started = time.monotonic()
        arrivals = []
        with httpx.stream(
            "POST",
            f"{proxy.https}/graphql",
            json={"query": "subscription { productUpdated(productId: 1) { id } }"},
            headers={"Accept": "text/event-stream"},
            verify=_tls(),
            timeout=10,
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for chunk in response.iter_text():
                if "event: next" in chunk:
                    arrivals.append(time.monotonic() - started)
    # the stub sends an event every 0.4 s: each is seen when sent, not when the stream ends
    assert len(arrivals) == 3, arrivals
    assert arrivals[0] < 0.35, arrivals
    assert arrivals[2] - arrivals[0] > 0.6, arrivals


def test_websocket_upgrades_pass_through(tmp_path: Path) -> None:
    with (
        stream_stub() as port,
        nginx_proxy([port], tmp_path / "nginx") as proxy,
        ws_connect(
            f"wss://127.0.0.1:{proxy.https_port}/graphql",
            ssl=_tls(),
            subprotocols=["graphql-transport-ws"],
            open_timeout=10,
        ) as socket_,
    ):
        assert socket_.subprotocol == "graphql-transport-ws"
        socket_.send('{"type":"connection_init"}')
        assert socket_.recv(timeout=5) == 'echo {"type":"connection_init"}'
        time.sleep(0.5)  # longer than nothing: the upgraded connection stays open
        socket_.send("ping")
        assert socket_.recv(timeout=5) == "echo ping"


# --- graceful shutdown of one process ---------------------------------------------------------


def _raw_post_head(port: int, body: bytes) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(
        b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Accept: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return connection


def test_sigterm_finishes_the_request_in_flight_and_stops_accepting(backend: Backend) -> None:
    server = ServerProcess(backend.settings(**LIFTED))
    try:
        body = b'{"query": "{ __typename }"}'
        # given a request in flight: its head read, its body still coming
        in_flight = _raw_post_head(server.port, body)
        time.sleep(0.3)
        # when the process is told to stop
        server.terminate()
        time.sleep(0.5)
        # then it accepts no new connection ...
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", server.port), timeout=2),
        ):
            pass
        # ... and the request in flight still gets its whole answer, then the process exits
        in_flight.sendall(body)
        answer = b""
        while chunk := in_flight.recv(65536):
            answer += chunk
        in_flight.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert answer.endswith(b'{"data":{"__typename":"Query"}}') or b'"__typename"' in answer
        assert server.wait() in STOPPED
    finally:
        server.stop()


def test_readiness_says_draining_before_the_process_stops(backend: Backend) -> None:
    server = ServerProcess(
        backend.settings(**LIFTED), env={"SHOPGRAPH_SHUTDOWN_DRAIN_SECONDS": "1.5"}
    )
    try:
        assert httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200
        stopped_at = time.monotonic()
        server.terminate()
        time.sleep(0.2)
        # while draining: not ready, still alive and still serving
        ready = httpx.get(f"{server.base}/readyz", timeout=5)
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
        served = httpx.post(f"{server.base}/graphql", json=LISTING, timeout=10)
        assert served.status_code == 200 and "errors" not in served.json()
        # then it stops, after the drain
        assert server.wait() in STOPPED
        assert time.monotonic() - stopped_at >= 1.4
    finally:
        server.stop()


def _worker_pids(pid: int) -> list[int]:
    """uvicorn's worker processes under the supervisor `pid` (not multiprocessing helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


def test_serve_with_two_workers_runs_two_processes_on_one_port(backend: Backend) -> None:
    server = ServerProcess(backend.settings(**LIFTED), workers=2)
    try:
        deadline = time.monotonic() + 30
        while len(workers := _worker_pids(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2, workers
        with httpx.Client(base_url=server.base, timeout=10) as client:
            for _ in range(10):
                response = client.post("/graphql", json=LISTING, headers={"Connection": "close"})
                assert response.status_code == 200 and "errors" not in response.json()
        server.terminate()
        assert server.wait() in STOPPED
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        server.stop()


# --- two processes behind nginx (PostgreSQL and Redis shared) --------------------------------


def _two_process_settings(backend: Backend) -> Any:
    if backend.redis_url is None:
        pytest.skip("one process in the embedded mode: two need the shared PostgreSQL and Redis")
    return backend.settings(**LIFTED)


def test_requests_over_tls_are_balanced_to_both_processes(backend: Backend, tmp_path: Path) -> None:
    settings = _two_process_settings(backend)
    with server_processes(settings, 2) as servers:
        ports = [server.port for server in servers]
        with nginx_proxy(ports, tmp_path / "nginx") as proxy:
            with httpx.Client(base_url=proxy.https, verify=_tls(), timeout=10) as client:
                for _ in range(20):
                    response = client.post("/graphql", json=LISTING)
                    assert response.status_code == 200, response.text
                    assert "errors" not in response.json()
                assert client.get("/readyz").json()["status"] == "ready"
                assert client.get("/healthz").status_code == 200
            used = _upstreams(proxy.access_log())
    assert {f"127.0.0.1:{port}" for port in ports} <= set(used), used
    assert min(used[f"127.0.0.1:{port}"] for port in ports) >= 5, used


async def _stream_of_requests(url: str, stop: threading.Event, clients: int) -> list[Any]:
    outcomes: list[Any] = []

    async def one_client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                response = await http.post(url, json=LISTING)
                payload = response.json()
                ok = response.status_code == 200 and "errors" not in payload
                outcomes.append(True if ok else (response.status_code, response.text[:200]))
            except (httpx.HTTPError, ValueError) as error:
                outcomes.append(repr(error))

    async with httpx.AsyncClient(verify=_tls(), timeout=30) as http:
        await asyncio.gather(*(one_client(http) for _ in range(clients)))
    return outcomes


def test_sigterm_to_one_process_during_a_stream_of_requests_fails_none(
    backend: Backend, tmp_path: Path
) -> None:
    settings = _two_process_settings(backend)
    with server_processes(settings, 2) as servers:
        ports = [server.port for server in servers]
        with nginx_proxy(ports, tmp_path / "nginx") as proxy:
            stop = threading.Event()
            results: list[Any] = []
            stream = threading.Thread(
                target=lambda: results.extend(
                    asyncio.run(_stream_of_requests(f"{proxy.https}/graphql", stop, 6))
                )
            )
            stream.start()
            time.sleep(1.5)
            before = len(proxy.access_log())
            servers[0].terminate()  # no drain delay: the listener closes at once
            assert servers[0].wait() in STOPPED
            after_exit = len(proxy.access_log())
            time.sleep(1.5)
            stop.set()
            stream.join(timeout=60)
            log = proxy.access_log()
    failed = [outcome for outcome in results if outcome is not True]
    assert not failed, (failed[:5], proxy.error_log()[-3000:])
    assert len(results) >= 50
    used_before, used_after = _upstreams(log[:before]), _upstreams(log[after_exit:])
    assert len(used_before) == 2, used_before
    # once the first process is gone every request is answered by the other one
    assert set(used_after) == {f"127.0.0.1:{ports[1]}"}, used_after
    assert used_after.total() >= 20, used_after
