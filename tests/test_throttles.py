"""Throttles on credential checks and budgets that one IP cannot multiply (issue 9, items 2 and 3).

/oauth/token refuses a flood of wrong secrets before hashing them; a stranger failing
sign-ins from one IP cannot lock the owner out from another, and failures spread over
many IPs slow an account's sign-ins rather than lock them; accounts signed in from one
IP share that IP's budget. Each test uses client ids, emails and IPs of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.platform.passwords import PasswordCheck, PasswordHasher
from tests.conftest import Backend, GraphQLClient, signed_in_client
from tests.test_accounts import (
    Callers,
    login,
    register,
    running_app,
    unique_email,
    unique_ip,
)
from tests.test_partners import FORM, create_partner

PAIR_LIMIT = 3
FIVE_NAMES = "{ products(first: 5) { edges { node { name } } } }"  # 7 points


@pytest.fixture
async def throttled_app(backend: Backend) -> AsyncIterator[Starlette]:
    """An app with small credential throttles; the slow lane never refills during a test."""
    async for app in running_app(
        backend,
        login_max_failures_per_account=PAIR_LIMIT,
        login_max_failures_per_ip=50,
        login_max_failures_per_account_total=4,
        login_slow_lane_seconds=3600,
        oauth_max_failures_per_client=PAIR_LIMIT,
        oauth_max_failures_per_ip=5,
        rate_limit_key_prefix=f"shopgraph-test:{uuid.uuid4().hex}:",
    ):
        yield app


@pytest.fixture
async def callers(throttled_app: Starlette) -> AsyncIterator[Callers]:
    """Clients of the throttled app, each from its own IP unless told otherwise."""
    made = Callers(throttled_app)
    yield made
    await made.aclose()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the Argon2 verifications the server runs (the real ones still run)."""
    seen: list[int] = []
    original = PasswordHasher.verify

    async def counting(self: PasswordHasher, password_hash: str | None, password: str) -> Any:
        seen.append(1)
        check: PasswordCheck = await original(self, password_hash, password)
        return check

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return seen


async def _token(app: Starlette, ip: str, client_id: str, secret: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://shopgraph.test"
    ) as http:
        data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return await http.post("/oauth/token", data=data, headers=FORM)


# --- /oauth/token -----------------------------------------------------------------------------


async def test_a_flood_of_wrong_secrets_is_refused_before_hashing(
    backend: Backend, throttled_app: Starlette, verifications: list[int]
) -> None:
    partner, _ = create_partner(backend.settings())
    flooder = unique_ip()

    answers = [
        await _token(throttled_app, flooder, partner.client_id, f"wrong-{n}") for n in range(12)
    ]

    assert [answer.status_code for answer in answers] == [401] * PAIR_LIMIT + [429] * 9
    assert len(verifications) == PAIR_LIMIT  # the refused ones were never hashed
    refused = answers[-1]
    assert refused.json()["error"] == "temporarily_unavailable"
    assert "try again in" in refused.json()["error_description"]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["cache-control"] == "no-store"
    # The partner itself, from its own IP, still gets its token.
    own = await _token(throttled_app, unique_ip(), partner.client_id, partner.client_secret)
    assert own.status_code == 200, own.text


async def test_token_requests_are_throttled_per_ip_across_client_ids(
    throttled_app: Starlette, verifications: list[int]
) -> None:
    flooder = unique_ip()

    answers = [
        await _token(throttled_app, flooder, f"sgp_{uuid.uuid4().hex}", "wrong") for _ in range(8)
    ]

    assert [answer.status_code for answer in answers] == [401] * 5 + [429] * 3
    assert len(verifications) == 5


async def test_a_client_id_failing_from_many_ips_is_slowed_not_locked(
    backend: Backend, throttled_app: Starlette
) -> None:
    partner, _ = create_partner(backend.settings())
    # the client-wide ceiling is 10 x PAIR_LIMIT failures: spent from ten IPs
    for _ in range(10):
        ip = unique_ip()
        for _ in range(PAIR_LIMIT):
            wrong = await _token(throttled_app, ip, partner.client_id, "wrong")
            assert wrong.status_code == 401

    # past it, one try goes through the slow lane (the partner's own, which succeeds) ...
    own = await _token(throttled_app, unique_ip(), partner.client_id, partner.client_secret)
    # ... and the next, from yet another IP, waits
    slowed = await _token(throttled_app, unique_ip(), partner.client_id, "wrong")

    assert own.status_code == 200, own.text
    assert slowed.status_code == 429


# --- sign-in ----------------------------------------------------------------------------------


async def test_a_stranger_failing_from_one_ip_cannot_lock_the_owner_out(
    callers: Callers, verifications: list[int]
) -> None:
    email = unique_email()
    await register(callers(), email=email)
    stranger = callers(ip=unique_ip())
    verifications.clear()

    attempts = [await login(stranger, email, f"guess-{n}") for n in range(10)]
    owner = await login(callers(ip=unique_ip()), email)

    codes = [attempt["userErrors"][0]["code"] for attempt in attempts]
    assert codes == ["INVALID_CREDENTIALS"] * PAIR_LIMIT + ["THROTTLED"] * 7
    assert owner["userErrors"] == [] and owner["accessToken"]
    assert len(verifications) == PAIR_LIMIT + 1  # the throttled guesses were never hashed


async def test_failures_from_many_ips_slow_an_account_rather_than_lock_it(
    callers: Callers,
) -> None:
    email = unique_email()
    await register(callers(), email=email)
    # the account-wide ceiling (4) spent from two IPs
    for guesses in (PAIR_LIMIT, 1):
        stranger = callers(ip=unique_ip())
        for _ in range(guesses):
            assert (await login(stranger, email, "guess"))["userErrors"][0]["code"] == (
                "INVALID_CREDENTIALS"
            )

    owner = await login(callers(ip=unique_ip()), email)  # through the slow lane
    next_stranger = await login(callers(ip=unique_ip()), email, "guess")

    assert owner["userErrors"] == [] and owner["accessToken"]
    assert next_stranger["userErrors"][0]["code"] == "THROTTLED"


# --- budgets ----------------------------------------------------------------------------------


async def test_five_accounts_on_one_ip_share_the_ips_budget(backend: Backend) -> None:
    budget = {
        "rate_limit_capacity": 20,
        "rate_limit_restore_rate": 0.001,
        "rate_limit_key_prefix": f"shopgraph-test:{uuid.uuid4().hex}:",
    }
    settings = backend.settings(**budget)
    async for app in running_app(backend, **budget):
        ip = unique_ip()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
            base_url="http://shopgraph.test",
        ) as http:
            users: list[GraphQLClient] = [
                await signed_in_client(http, settings, role="CUSTOMER", email=unique_email())
                for _ in range(5)
            ]
            statuses = [(await user.post(FIVE_NAMES)).status_code for user in users * 2]
        # another IP's signed-in user is not affected
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(unique_ip(), 40000)),
            base_url="http://shopgraph.test",
        ) as elsewhere:
            other = await signed_in_client(
                elsewhere, settings, role="CUSTOMER", email=unique_email()
            )
            assert (await other.post(FIVE_NAMES)).status_code == 200

    # 20 points of 7 each: two requests for the IP, not two per account
    assert statuses.count(200) == 2
    assert statuses.count(429) == 8
