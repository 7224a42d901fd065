"""Server limits (issue 9, item 10) and trusted proxies (item 6, part), on a live uvicorn.

`shopgraph serve` passes uvicorn the options of `uvicorn_options(settings)`; the tests
here serve the app with those very options on loopback and talk raw HTTP over sockets.
"""

from __future__ import annotations

import logging
import time

import httpx
import orjson
import pytest
from uvicorn.main import main as uvicorn_command

from app.cli import uvicorn_argv, uvicorn_options
from app.settings import Settings, SettingsError, load_settings
from tests.conftest import Backend
from tests.raw_http import (
    SOCKET_TIMEOUT,
    TYPENAME,
    connect,
    is_closed,
    read_response,
    request_head,
    served,
    trickle,
)

# --- the options serve passes ------------------------------------------------------------


def test_serve_passes_server_limits_and_no_proxy_headers_by_default() -> None:
    argv = uvicorn_argv(uvicorn_options(Settings()))

    assert argv == [
        "--http",
        "app.asgi:http_protocol",
        "--ws",
        "app.http.server_protocol:GoingAwayWebSocketProtocol",
        "--ws-per-message-deflate",
        "false",
        "--timeout-keep-alive",
        "5",
        "--h11-max-incomplete-event-size",
        "16384",
        "--timeout-graceful-shutdown",
        "10",
        "--no-proxy-headers",
        "--limit-concurrency",
        "1000",
    ]
    # the installed uvicorn knows every one of them
    uvicorn_command.make_context("uvicorn", ["app.asgi:app", *argv])


def test_serve_believes_proxy_headers_from_the_trusted_proxies_only() -> None:
    settings = Settings(trusted_proxies="10.0.0.1, 10.1.0.0/16", limit_concurrency=None)

    argv = uvicorn_argv(uvicorn_options(settings))

    assert "--proxy-headers" in argv and "--no-proxy-headers" not in argv
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "10.0.0.1/32,10.1.0.0/16"
    assert "--limit-concurrency" not in argv
    uvicorn_command.make_context("uvicorn", ["app.asgi:app", *argv])


def test_trusted_proxies_take_a_json_list_and_refuse_what_is_no_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(trusted_proxies='["::1", "192.168.0.0/24"]').trusted_proxies == [
        "::1/128",
        "192.168.0.0/24",
    ]
    monkeypatch.setenv("SHOPGRAPH_TRUSTED_PROXIES", "10.0.0.1,proxy.local")
    with pytest.raises(SettingsError, match=r"SHOPGRAPH_TRUSTED_PROXIES: .*'proxy\.local'"):
        load_settings()


# --- trusted proxies ---------------------------------------------------------------------


@pytest.mark.parametrize("trusted", [[], ["127.0.0.1"]])
def test_a_spoofed_forwarded_for_does_not_buy_a_fresh_budget(
    backend: Backend, trusted: list[str]
) -> None:
    # a bucket of 3 points: `{ __typename }` is admitted for 2 (new), then 1
    with served(backend, rate_limit_capacity=3, trusted_proxies=trusted) as (host, port):
        statuses = [
            httpx.post(
                f"http://{host}:{port}/graphql",
                content=TYPENAME,
                headers={
                    "Content-Type": "application/json",
                    "X-Forwarded-For": f"203.0.113.{number}",
                },
            ).status_code
            for number in range(1, 6)
        ]

    if trusted:  # the control: a trusted proxy's header does pick the bucket
        assert statuses == [200] * 5
    else:  # every spoofed address spends the one loopback bucket
        assert statuses == [200, 200, 429, 429, 429]


# --- timeouts and buffers ----------------------------------------------------------------


def test_a_body_that_trickles_in_is_answered_408(backend: Backend) -> None:
    # the head's deadline (shorter) ends with the head: the body has the body's
    with (
        served(backend, body_timeout_seconds=1.5, header_timeout_seconds=0.5) as address,
        connect(address) as connection,
    ):
        connection.sendall(request_head(len(TYPENAME)))
        # one byte every 0.2 s: the whole body would take ~5 s
        status, headers, body = trickle(connection, TYPENAME, pause=0.2)

    assert status == 408, (status, body)
    [error] = orjson.loads(body)["errors"]
    assert error == {
        "message": "The request body did not arrive within 1.5 s",
        "extensions": {"code": "TIMEOUT"},
    }
    assert headers["connection"] == "close"


def test_an_idle_keep_alive_connection_is_closed_after_the_setting(backend: Backend) -> None:
    with (
        served(backend, timeout_keep_alive_seconds=1, header_timeout_seconds=60) as address,
        connect(address) as connection,
    ):
        connection.sendall(request_head(len(TYPENAME)) + TYPENAME)
        status, _, _ = read_response(connection)
        assert status == 200

        # then nothing: the server closes the connection (recv sees the end) after the
        # setting's 1 s; within 3 s, which uvicorn's own default (5 s) would not be
        connection.settimeout(3)
        assert is_closed(connection)


def test_connections_over_the_limit_are_answered_503(backend: Backend) -> None:
    with (
        served(backend, limit_concurrency=2, header_timeout_seconds=60) as address,
        connect(address) as idle,
        connect(address) as other_idle,
    ):
        # two connections that send nothing hold the worker's limit: the next request is 503
        with connect(address) as connection:
            connection.sendall(request_head(len(TYPENAME)) + TYPENAME)
            status, headers, _ = read_response(connection)
        assert (status, headers["connection"]) == (503, "close")

        # the control: once they are gone, requests are served again
        idle.close()
        other_idle.close()
        assert _served_within(address, SOCKET_TIMEOUT) == 200


def _served_within(address: tuple[str, int], seconds: float) -> int:
    """The first status other than 503 of requests tried until `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        with connect(address) as connection:
            connection.sendall(request_head(len(TYPENAME)) + TYPENAME)
            status = read_response(connection)[0]
        if status != 503 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_headers_over_the_buffer_limit_are_refused(backend: Backend) -> None:
    # The limit is h11's: uvicorn picks httptools when it is installed, where it has no say.
    with (
        served(backend, server={"http": "h11"}, h11_max_incomplete_event_size=4096) as address,
        connect(address) as connection,
    ):
        # headers that never end: the server stops buffering them past the limit
        unfinished = request_head(len(TYPENAME)).removesuffix(b"\r\n")
        connection.sendall(unfinished + f"X-Padding: {'a' * 8000}".encode())
        status, _, _ = read_response(connection)

    assert status == 400


def test_a_client_that_leaves_mid_body_is_one_info_line(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with served(backend) as address:
        with connect(address) as connection:
            connection.sendall(request_head(1000) + b'{"query": ')
        # the server notices: wait for its line (a served request after it proves it is up)
        with connect(address) as connection:
            connection.sendall(request_head(len(TYPENAME)) + TYPENAME)
            assert read_response(connection)[0] == 200
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while time.monotonic() < deadline and not _disconnects(caplog):
            time.sleep(0.05)

    [record] = _disconnects(caplog)
    assert record.levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def _disconnects(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "client disconnected" in str(record.msg)]
