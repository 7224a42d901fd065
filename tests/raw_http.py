"""Raw HTTP/1.1 over sockets against a live uvicorn serving the options `serve` passes.

`shopgraph serve` passes uvicorn the options of `uvicorn_options(settings)` (the protocol
class included); `served` runs the app with those very options on loopback.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.cli import uvicorn_options
from app.main import create_app
from tests.conftest import Backend
from tests.live_server import live_server

SOCKET_TIMEOUT = 15  # seconds: a test that hangs fails instead
TYPENAME = b'{"query": "{ __typename }"}'


@contextmanager
def served(
    backend: Backend, *, server: dict[str, Any] | None = None, **overrides: Any
) -> Iterator[tuple[str, int]]:
    """Serve the app with `serve`'s uvicorn options for these settings; yield (host, port).

    `server` replaces uvicorn options, `overrides` are settings.
    """
    values: dict[str, Any] = {
        "rate_limit_key_prefix": f"shopgraph-test:{uuid.uuid4().hex}:",
        "rate_limit_restore_rate": 0.001,
    }
    values.update(overrides)
    settings = backend.settings(**values)
    options = {**uvicorn_options(settings), **(server or {})}
    with live_server(create_app(settings), **options) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def connect(address: tuple[str, int], timeout: float = SOCKET_TIMEOUT) -> socket.socket:
    """A TCP connection to the server."""
    return socket.create_connection(address, timeout=timeout)


def request_head(length: int, extra: str = "") -> bytes:
    """The head of a POST /graphql with a JSON body of `length` bytes; `extra` header lines."""
    return (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def is_closed(connection: socket.socket) -> bool:
    """Whether the server ended the connection (recv sees the end, or a reset)."""
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


def trickle(
    connection: socket.socket, data: bytes, *, pause: float, timeout: float = SOCKET_TIMEOUT
) -> tuple[int, dict[str, str], bytes]:
    """Send `data` a byte at a time, `pause` s apart, until the server answers or stops
    reading; the answer (status 0 when none came). The socket's timeout is then `timeout`."""
    status, headers, body = 0, {}, b""
    for byte in data:
        try:
            connection.sendall(bytes([byte]))
        except OSError:
            break
        connection.settimeout(pause)
        try:
            status, headers, body = read_response(connection)
            break
        except TimeoutError:
            continue
        finally:
            connection.settimeout(timeout)
    return status, headers, body
