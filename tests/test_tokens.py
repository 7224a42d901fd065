"""Access tokens under attack: forged, expired, retired and revoked tokens are refused with 401.

Each forged token carries the claims of a real, live session, so the only thing
wrong with it is the thing under test (a control re-signs them correctly).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from starlette.applications import Starlette

from app.platform.tokens import ALGORITHM, TokenService
from tests.conftest import Backend, GraphQLClient
from tests.test_accounts import (
    LOGOUT,
    ME,
    Callers,
    assert_unauthenticated,
    login,
    register,
    running_app,
)

OLD_KEY = "old-signing-key-" + "o" * 32
NEW_KEY = "new-signing-key-" + "n" * 32


@pytest.fixture(scope="module")
async def tokens_app(backend: Backend) -> AsyncIterator[Starlette]:
    """The app with default settings (keys derived from the secret key)."""
    async for app in running_app(backend):
        yield app


@pytest.fixture
async def callers(tokens_app: Starlette) -> AsyncIterator[Callers]:
    """Makes callers of the app."""
    made = Callers(tokens_app)
    yield made
    await made.aclose()


@pytest.fixture
async def session(callers: Callers) -> dict[str, Any]:
    """A registered customer's AuthPayload."""
    return await register(callers())


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, read without checking it."""
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def signed(claims: dict[str, Any], key: str, *, kid: str, algorithm: str = ALGORITHM) -> str:
    """The claims signed with `key` under the key id `kid`."""
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


async def test_a_correctly_signed_token_is_accepted(
    callers: Callers, session: dict[str, Any], backend: Backend
) -> None:
    settings = backend.settings()
    resigned = signed(
        claims_of(session["accessToken"]),
        settings.signing_keys[settings.active_kid],
        kid=settings.active_kid,
    )

    data = await callers(resigned).query(ME)

    assert data["me"]["id"] == session["user"]["id"]


async def test_an_unsigned_alg_none_token_is_refused(
    callers: Callers, session: dict[str, Any]
) -> None:
    forged = jwt.encode(claims_of(session["accessToken"]), None, algorithm="none")

    await assert_unauthenticated(callers(forged))


async def test_a_token_signed_with_the_wrong_key_is_refused(
    callers: Callers, session: dict[str, Any], backend: Backend
) -> None:
    claims = {**claims_of(session["accessToken"]), "role": "ADMIN"}
    forged = signed(claims, "not-the-server-key-" + "x" * 32, kid=backend.settings().active_kid)

    await assert_unauthenticated(callers(forged))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_a_token_with_another_algorithm_is_refused(
    callers: Callers, session: dict[str, Any], backend: Backend
) -> None:
    settings = backend.settings()
    forged = signed(
        claims_of(session["accessToken"]),
        settings.signing_keys[settings.active_kid],
        kid=settings.active_kid,
        algorithm="HS512",
    )

    await assert_unauthenticated(callers(forged))


async def test_an_expired_token_is_refused(
    callers: Callers, session: dict[str, Any], backend: Backend
) -> None:
    settings = backend.settings()
    now = int(time.time())
    claims = {**claims_of(session["accessToken"]), "iat": now - 3600, "exp": now - 60}
    expired = signed(claims, settings.signing_keys[settings.active_kid], kid=settings.active_kid)

    response = await callers(expired).post(ME)

    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "The access token has expired"


async def test_a_token_with_an_unknown_key_id_is_refused(
    callers: Callers, session: dict[str, Any], backend: Backend
) -> None:
    settings = backend.settings()
    forged = signed(
        claims_of(session["accessToken"]),
        settings.signing_keys[settings.active_kid],
        kid="retired-2019",
    )

    await assert_unauthenticated(callers(forged))


async def test_a_refresh_token_is_no_access_token(
    callers: Callers, session: dict[str, Any]
) -> None:
    await assert_unauthenticated(callers(session["refreshToken"]))


async def test_a_token_of_a_logged_out_session_is_refused(
    callers: Callers, session: dict[str, Any]
) -> None:
    caller = callers(session["accessToken"])
    assert (await caller.query(ME))["me"] is not None

    await caller.query(LOGOUT, {"token": session["refreshToken"]})

    await assert_unauthenticated(caller)


async def test_a_retired_key_verifies_while_listed_and_fails_once_removed(
    backend: Backend, session: dict[str, Any]
) -> None:
    # A token signed with the old key, for a live session.
    claims = claims_of(session["accessToken"])
    old_token, _ = TokenService(backend.settings(jwt_keys={"2025": OLD_KEY})).issue_user_token(
        user_id=int(claims["sub"]), role=claims["role"], session_id=claims["sid"]
    )
    rotating = {"2025": OLD_KEY, "2026": NEW_KEY}

    async for app in running_app(backend, jwt_keys=rotating, jwt_active_kid="2026"):
        callers = Callers(app)
        try:
            still_valid = await callers(old_token).query(ME)
            new_token = (await login(callers(), session["user"]["email"]))["accessToken"]
        finally:
            await callers.aclose()
    async for app in running_app(backend, jwt_keys={"2026": NEW_KEY}):
        callers = Callers(app)
        try:
            await assert_unauthenticated(callers(old_token))
            with_new_key = await callers(new_token).query(ME)
        finally:
            await callers.aclose()

    assert jwt.get_unverified_header(old_token)["kid"] == "2025"
    assert jwt.get_unverified_header(new_token)["kid"] == "2026"
    assert still_valid["me"]["id"] == session["user"]["id"]
    assert with_new_key["me"]["id"] == session["user"]["id"]


async def test_the_shared_fixtures_hold_real_tokens(
    callers: Callers, customer: GraphQLClient
) -> None:
    data = await callers(customer.headers["Authorization"].removeprefix("Bearer ")).query(ME)

    assert data["me"]["email"] == "customer@test.example"
    assert data["me"]["role"] == "CUSTOMER"
