"""The request head's deadline (408) and size limit (431): app/http/server_protocol.py.

On a live uvicorn with the options `serve` passes (tests/raw_http.py), and once through
`shopgraph serve` itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import orjson
import pytest

from app.cli import uvicorn_options
from app.engine.compat import declared_ranges
from app.http.server_protocol import HeadLimitedProtocol
from app.settings import Settings
from tests.conftest import Backend
from tests.live_server import free_port
from tests.raw_http import (
    TYPENAME,
    connect,
    is_closed,
    read_response,
    request_head,
    served,
    trickle,
)

# How long a test waits for the server to close a connection whose deadline is 1 s: a
# bound on waiting (the default deadline, 10 s, would not be met), not a measured time.
CLOSED_WITHIN = 5
SHOPGRAPH = Path(sys.executable).parent / "shopgraph"


def _error(body: bytes) -> dict[str, object]:
    [error] = orjson.loads(body)["errors"]
    assert isinstance(error, dict)
    return error


def test_serve_runs_the_head_limited_protocol_with_the_settings() -> None:
    protocol = uvicorn_options(Settings(header_timeout_seconds=2.5, max_header_bytes=2048))["http"]

    assert issubclass(protocol, HeadLimitedProtocol)
    assert (protocol.header_timeout, protocol.max_header_bytes) == (2.5, 2048)


# --- the deadline ------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(backend: Backend) -> None:
    with (
        served(backend, header_timeout_seconds=1) as address,
        connect(address, timeout=CLOSED_WITHIN) as connection,
    ):
        assert is_closed(connection)  # no request to answer: closed without a word


def test_headers_that_trickle_in_are_answered_408(backend: Backend) -> None:
    with served(backend, header_timeout_seconds=1) as address, connect(address) as connection:
        # one byte every 0.3 s: the head would take ~30 s
        head = request_head(len(TYPENAME))
        status, headers, body = trickle(connection, head, pause=0.3, timeout=CLOSED_WITHIN)

        assert status == 408, (status, body)
        assert _error(body) == {
            "message": "The request head did not arrive within 1 s",
            "extensions": {"code": "TIMEOUT"},
        }
        assert headers["connection"] == "close"
        assert is_closed(connection)


def test_keep_alive_requests_and_a_slow_body_are_not_cut_by_the_head_deadline(
    backend: Backend,
) -> None:
    with (
        served(
            backend,
            header_timeout_seconds=1,
            timeout_keep_alive_seconds=30,
            body_timeout_seconds=30,
        ) as address,
        connect(address) as connection,
    ):
        # idle between requests for longer than the head's deadline: keep-alive's time
        for _ in range(3):
            connection.sendall(request_head(len(TYPENAME)) + TYPENAME)
            status, _, body = read_response(connection)
            assert status == 200, body
            time.sleep(1.5)
        # two requests in one write (pipelined): both answered
        connection.sendall((request_head(len(TYPENAME)) + TYPENAME) * 2)
        answers = b""
        while answers.count(b'"__typename":"Query"') < 2:
            chunk = connection.recv(65536)
            assert chunk, answers
            answers += chunk
        assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2, answers

        # a head in time, then a body slower than the head's deadline (not the body's)
        connection.sendall(request_head(len(TYPENAME)) + TYPENAME[:5])
        time.sleep(1.5)
        connection.sendall(TYPENAME[5:])
        status, _, body = read_response(connection)

    assert status == 200, body
    assert orjson.loads(body)["data"] == {"__typename": "Query"}


# --- the size limit ----------------------------------------------------------------------


@pytest.mark.parametrize("finished", [False, True])
def test_a_head_over_the_limit_is_answered_431(backend: Backend, finished: bool) -> None:
    with served(backend, max_header_bytes=4096) as address, connect(address) as connection:
        # under httptools too (serve's parser): past the limit, the head is not buffered
        padding = f"X-Padding: {'a' * 8000}" + ("\r\n" if finished else "")
        head = request_head(len(TYPENAME)).removesuffix(b"\r\n") + padding.encode()
        connection.sendall(head + (b"\r\n" + TYPENAME if finished else b""))
        status, headers, body = read_response(connection)

        assert status == 431, (status, body)
        assert _error(body) == {
            "message": "The request head is over 4096 bytes",
            "extensions": {"code": "PAYLOAD_TOO_LARGE"},
        }
        assert headers["connection"] == "close"
        assert is_closed(connection)


def test_a_head_under_the_limit_with_a_large_body_in_one_write_is_served(
    backend: Backend,
) -> None:
    # Only the head counts: a body arriving with it, in the same reads, is not head.
    body = orjson.dumps({"query": "{ __typename }", "variables": {"pad": "a" * 300_000}})
    head = request_head(len(body), f"X-Padding: {'a' * 3000}\r\n")
    with served(backend, max_header_bytes=4096) as address, connect(address) as connection:
        connection.sendall(head + body)
        status, _, answer = read_response(connection)

    assert len(head) < 4096
    assert status == 200, answer
    assert orjson.loads(answer)["data"] == {"__typename": "Query"}


# --- through `shopgraph serve` -----------------------------------------------------------


@pytest.fixture
def shopgraph_serve(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`shopgraph serve --workers 2` (embedded database) with a 1 s head deadline, 2 KiB heads."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env |= {
        "SHOPGRAPH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "SHOPGRAPH_HEADER_TIMEOUT_SECONDS": "1",
        "SHOPGRAPH_MAX_HEADER_BYTES": "2048",
    }
    migrate = subprocess.run(
        [str(SHOPGRAPH), "migrate"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(SHOPGRAPH), "serve", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(server, port, log)
        yield "127.0.0.1", port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 120  # a bound on waiting, not a measure of start-up
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"serve did not answer:\n{log.read_text()}")


def test_shopgraph_serve_runs_the_head_limits_of_its_settings(
    shopgraph_serve: tuple[str, int],
) -> None:
    with connect(shopgraph_serve, timeout=CLOSED_WITHIN) as idle:
        assert is_closed(idle)

    with connect(shopgraph_serve) as connection:
        connection.sendall(request_head(len(TYPENAME), f"X-Padding: {'a' * 3000}\r\n"))
        assert read_response(connection)[0] == 431

    with connect(shopgraph_serve) as connection:
        connection.sendall(request_head(len(TYPENAME)) + TYPENAME)
        assert read_response(connection)[0] == 200


def test_the_uvicorn_it_subclasses_is_pinned_to_one_minor_version() -> None:
    # server_protocol() refuses (check_installed) any uvicorn outside this declared range
    declared = declared_ranges()["uvicorn"].specifier

    assert declared.contains(metadata.version("uvicorn"))
    assert not declared.contains("0.55.0") and not declared.contains("0.53.9")
