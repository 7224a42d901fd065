"""A database that stalls or goes away: every request ends within the timeout, in GraphQL's
shape, and the server is back as soon as the database is.

The path to PostgreSQL runs through a TCP proxy in its own process (tests/tcp_proxy.py):
stopped with SIGSTOP it black-holes every connection, killed it cuts them, restarted on the
same port it is the way back. PostgreSQL only: SQLite has no connection to cut.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Backend, GraphQLClient, serving_app, signed_in_client
from tests.live_server import free_port

PROXY = Path(__file__).with_name("tcp_proxy.py")
OPERATION_TIMEOUT = 2.0
# Answered within the timeout: the operation's own, plus time for the answer to be built
# and for a loaded machine to schedule it.
ANSWER_BOUND = OPERATION_TIMEOUT + 1.5
LISTING = "{ products(first: 3) { edges { node { name variants { sku } } } } }"
ME = "{ me { email } }"
TYPENAME = "{ __typename }"
# A mutation that reads the database and that no throttle answers first.
REFRESH = 'mutation { refreshToken(refreshToken: "no-such-token") { accessToken } }'


class Proxy:
    """The proxy process on one port; `start` again after `kill` to bring the path back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self.target = (target_host, target_port)
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PROXY), str(self.port), self.target[0], str(self.target[1])],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def black_hole(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        if self.process is None:
            return
        self.process.kill()  # works on a stopped process too
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None


@contextmanager
def running_proxy(backend: Backend) -> Iterator[Proxy]:
    url = make_url(backend.database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.kill()


@dataclass
class Callers:
    proxy: Proxy
    anonymous: GraphQLClient
    customer: GraphQLClient
    partner: tuple[str, str]  # client id and secret


async def _partner(backend: Backend) -> tuple[str, str]:
    from app.db import Database
    from app.platform.passwords import password_hasher
    from app.services.partners import create_partner

    settings = backend.settings()
    db = Database.from_settings(settings)
    try:
        made = await create_partner(
            db,
            name=f"outage-{time.monotonic_ns()}",
            scopes=["catalog:read"],
            rate_tier="standard",
            known_tiers=frozenset(settings.partner_tiers),
            hasher=password_hasher(1),
        )
    finally:
        await db.dispose()
    return made.client_id, made.client_secret


@pytest.fixture
async def callers(backend: Backend) -> AsyncIterator[Callers]:
    if backend.name != "postgres":
        pytest.skip("needs a database behind a network connection (PostgreSQL)")
    with running_proxy(backend) as proxy:
        through_proxy = (
            make_url(backend.database_url)
            .set(host="127.0.0.1", port=proxy.port)
            .render_as_string(hide_password=False)
        )
        settings = backend.settings(
            database_url=through_proxy,
            operation_timeout_seconds=OPERATION_TIMEOUT,
            db_connect_timeout_seconds=1.0,
            db_statement_timeout_seconds=1.0,
            db_pool_timeout_seconds=1.0,
        )
        async with serving_app(settings, timeout=30) as http:
            customer = await signed_in_client(
                http, backend.settings(), role="CUSTOMER", email="customer@outage.test"
            )
            yield Callers(proxy, GraphQLClient(http), customer, await _partner(backend))


async def _answer(caller: GraphQLClient, query: str) -> tuple[float, int, dict[str, Any]]:
    started = time.monotonic()
    response = await caller.post(query)
    return time.monotonic() - started, response.status_code, response.json()


async def _every_kind(callers: Callers) -> list[tuple[str, float, int, dict[str, Any]]]:
    """One of each kind of request at once: catalog read, signed-in read, a mutation."""
    asked = [
        ("listing", callers.anonymous, LISTING),
        ("me", callers.customer, ME),
        ("signed-in typename", callers.customer, TYPENAME),
        ("refresh", callers.anonymous, REFRESH),
    ]
    answers = await asyncio.gather(*(_answer(caller, query) for _, caller, query in asked))
    return [(name, *answer) for (name, _, _), answer in zip(asked, answers, strict=True)]


def _assert_graphql_errors(name: str, status: int, body: dict[str, Any]) -> None:
    assert body.get("errors"), (name, status, body)
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert codes <= {"TIMEOUT", "SERVICE_UNAVAILABLE"}, (name, status, body)
    assert status in (200, 503), (name, status, body)


async def _token(callers: Callers) -> tuple[float, int, dict[str, Any]]:
    client_id, secret = callers.partner
    started = time.monotonic()
    response = await callers.anonymous.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    return time.monotonic() - started, response.status_code, response.json()


async def _assert_token_unavailable(callers: Callers) -> None:
    seconds, status, body = await _token(callers)
    assert seconds < ANSWER_BOUND, (seconds, body)
    assert (status, body["error"]) == (503, "temporarily_unavailable"), body


async def _wait_until_served(callers: Callers, within: float) -> float:
    started = time.monotonic()
    while True:
        answers = await _every_kind(callers)
        served = all(
            status == 200 and "errors" not in body
            for name, _, status, body in answers
            if name != "refresh"
        )
        if served and (await _token(callers))[1] == 200:
            return time.monotonic() - started
        assert time.monotonic() - started < within, answers
        await asyncio.sleep(0.05)


async def test_a_black_holed_database_answers_every_request_within_the_timeout(
    callers: Callers,
) -> None:
    # given a server that works through the proxy
    await _wait_until_served(callers, within=5)

    # when the path to the database swallows every packet
    callers.proxy.black_hole()

    # then each kind of request ends within the timeout, with a GraphQL error
    for name, seconds, status, body in await _every_kind(callers):
        assert seconds < ANSWER_BOUND, (name, seconds, body)
        _assert_graphql_errors(name, status, body)
    await _assert_token_unavailable(callers)
    # and a request that needs no database is not held up at all
    assert (await callers.anonymous.query(TYPENAME)) == {"__typename": "Query"}

    # when the path is cut and comes back
    callers.proxy.kill()
    for name, seconds, status, body in await _every_kind(callers):
        assert seconds < ANSWER_BOUND, (name, seconds, body)
        _assert_graphql_errors(name, status, body)
    await _assert_token_unavailable(callers)
    callers.proxy.start()

    # then the server serves again within a second
    assert await _wait_until_served(callers, within=1.0) < 1.0


async def test_a_database_that_went_away_is_a_clear_503_for_signed_in_callers(
    callers: Callers,
) -> None:
    await _wait_until_served(callers, within=5)
    callers.proxy.kill()

    name, _, status, body = (await _every_kind(callers))[2]

    assert name == "signed-in typename"
    assert status == 503, body
    assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "database" in body["errors"][0]["message"].lower()
