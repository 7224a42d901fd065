"""No plain-text 500s: an unexpected failure anywhere answers the masked GraphQL-shaped JSON
500, is logged in full with the request id, and leaves the keep-alive connection usable.

Against a live uvicorn on a loopback port, over one persistent connection (http.client keeps
its socket while the server keeps the connection open), as a real client sees it.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from app.main import create_app
from app.platform.tokens import TokenService
from app.settings import Settings
from tests.live_server import live_server

GRAPHQL_RESPONSE = "application/graphql-response+json"
TYPENAME = json.dumps({"query": "{ __typename }"})
TOKEN_FORM = "grant_type=client_credentials&client_id=shop-partner&client_secret=secret"


class Connection:
    """One HTTP/1.1 connection to a live server; fails if the server drops it."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        self.http = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        self.socket: object = None

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request on this connection; the status, headers and decoded JSON body."""
        self.http.request(method, path, body=body, headers=headers or {})
        response = self.http.getresponse()
        content = response.read()
        if self.socket is None:
            self.socket = self.http.sock
        assert self.http.sock is not None, "the server closed the connection"
        assert self.http.sock is self.socket, "the request did not use the same connection"
        found = {name.lower(): value for name, value in response.getheaders()}
        is_json = "json" in found.get("content-type", "")
        return response.status, found, json.loads(content) if is_json else content.decode()

    def graphql(self, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """POST `{ __typename }` to /graphql."""
        sent = {"content-type": "application/json", **(headers or {})}
        return self.request("POST", "/graphql", TYPENAME, sent)

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


def _assert_masked_500(status: int, headers: dict[str, str], body: Any) -> str:
    assert status == 500, body
    request_id = headers["x-request-id"]
    assert body == {
        "errors": [
            {
                "message": "Internal server error",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            }
        ]
    }
    assert "connection" not in headers or headers["connection"].lower() != "close"
    assert headers["x-content-type-options"] == "nosniff", "the usual headers are still added"
    return request_id


def _logged_in_full(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    events = [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("request_id") == request_id
    ]
    assert len(events) == 1, events
    [event] = events
    assert event["event"] == "unexpected error"
    assert isinstance(event["exc_info"], BaseException), "logged with its traceback"
    return event


def _unmigrated(tmp_path: Path) -> Settings:
    # Every table is missing: any SQL fails the way a lost database does.
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}",
        env="development",
        debug=True,
    )


@pytest.fixture
def unmigrated_server(tmp_path: Path) -> Iterator[tuple[Settings, Connection]]:
    """A live app whose database has no tables, and one connection to it."""
    settings = _unmigrated(tmp_path)
    with live_server(create_app(settings)) as url:
        connection = Connection(url)
        yield settings, connection
        connection.close()


def test_a_failure_in_the_pipeline_is_a_json_500_and_the_connection_stays_usable(
    unmigrated_server: tuple[Settings, Connection], caplog: pytest.LogCaptureFixture
) -> None:
    # given a signed-in caller whose session lookup fails (no tables): authenticate raises
    settings, connection = unmigrated_server
    token, _ = TokenService(settings).issue_user_token(
        user_id=1, role="CUSTOMER", session_id="lost"
    )

    # when it asks
    status, headers, body = connection.graphql(
        {"authorization": f"Bearer {token}", "accept": GRAPHQL_RESPONSE}
    )

    # then the answer is the masked 500, in the negotiated media type, and the error is logged
    request_id = _assert_masked_500(status, headers, body)
    assert headers["content-type"].startswith(GRAPHQL_RESPONSE)
    event = _logged_in_full(caplog, request_id)
    assert "no such table" in str(event["exc_info"])
    assert "no such table" not in json.dumps(body)
    # and the same connection serves the next request
    status, _, body = connection.graphql()
    assert (status, body["data"]) == (200, {"__typename": "Query"})


def test_a_failure_in_the_token_endpoint_is_a_json_500_and_the_connection_stays_usable(
    unmigrated_server: tuple[Settings, Connection], caplog: pytest.LogCaptureFixture
) -> None:
    _, connection = unmigrated_server
    form = {"content-type": "application/x-www-form-urlencoded"}

    status, headers, body = connection.request("POST", "/oauth/token", TOKEN_FORM, form)

    request_id = _assert_masked_500(status, headers, body)
    assert headers["content-type"].startswith("application/json")
    _logged_in_full(caplog, request_id)
    status, _, body = connection.request("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})


async def _broken_health(request: Request) -> Response:
    raise RuntimeError("injected: the health check broke")


def _with_broken_health(app: Starlette) -> Starlette:
    """Fault injection: the app's /health route now raises."""
    [route] = [
        route for route in app.routes if isinstance(route, Route) and route.path == "/health"
    ]
    route.app = request_response(_broken_health)
    return app


def test_a_failure_in_a_plain_route_is_a_json_500_and_the_connection_stays_usable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _with_broken_health(create_app(_unmigrated(tmp_path)))
    with live_server(app) as url:
        connection = Connection(url)
        try:
            status, headers, body = connection.request("GET", "/health")
            request_id = _assert_masked_500(status, headers, body)
            event = _logged_in_full(caplog, request_id)
            assert "injected" in str(event["exc_info"])

            status, _, body = connection.graphql()
            assert (status, body["data"]) == (200, {"__typename": "Query"})
            status, headers, body = connection.request("GET", "/health")
            assert _assert_masked_500(status, headers, body) != request_id
        finally:
            connection.close()
