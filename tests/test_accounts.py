"""Accounts over HTTP: register, sign in, sessions, profile, address book, throttling, visibility.

Every test makes its own users (unique emails) and calls from its own client IP,
so failed sign-ins of one test never throttle another.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import argon2
import httpx
import pytest
import strawberry
from sqlalchemy import select, update
from starlette.applications import Starlette

from app.context import Viewer
from app.db import Database
from app.main import create_app
from app.models import Role, User
from app.platform.crypto import DataCipher
from app.platform.global_ids import to_global_id
from app.schema.accounts import Role as RoleEnum
from app.schema.accounts import User as UserType
from app.settings import Settings
from tests.conftest import Backend, GraphQLClient

PASSWORD = "violet-harbor-lantern-42"
NEW_PASSWORD = "amber-quarry-whistle-17"
MAX_FAILURES_PER_ACCOUNT = 3
MAX_FAILURES_PER_IP = 6

USER_FIELDS = "id email fullName role createdAt"
ERRORS = "userErrors { field message code }"
AUTH_FIELDS = f"accessToken refreshToken expiresIn user {{ {USER_FIELDS} }} {ERRORS}"
REGISTER = f"mutation ($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_FIELDS} }} }}"
LOGIN = f"mutation ($input: LoginInput!) {{ login(input: $input) {{ {AUTH_FIELDS} }} }}"
REFRESH = f"mutation ($token: String!) {{ refreshToken(refreshToken: $token) {{ {AUTH_FIELDS} }} }}"
LOGOUT = "mutation ($token: String!) { logout(refreshToken: $token) }"
ADDRESS_FIELDS = "id fullName line1 line2 city postalCode country"
ME = f"{{ me {{ {USER_FIELDS} addresses {{ {ADDRESS_FIELDS} }} }} }}"
UPDATE_PROFILE = f"""
mutation ($input: UpdateProfileInput!) {{
  updateProfile(input: $input) {{ user {{ {USER_FIELDS} }} {ERRORS} }}
}}
"""
CHANGE_PASSWORD = f"""
mutation ($input: ChangePasswordInput!) {{
  changePassword(input: $input) {{ user {{ id }} {ERRORS} }}
}}
"""
ADD_ADDRESS = f"""
mutation ($input: AddressInput!) {{
  addAddress(input: $input) {{ address {{ {ADDRESS_FIELDS} }} {ERRORS} }}
}}
"""
UPDATE_ADDRESS = f"""
mutation ($id: ID!, $input: AddressInput!) {{
  updateAddress(id: $id, input: $input) {{ address {{ {ADDRESS_FIELDS} }} {ERRORS} }}
}}
"""
REMOVE_ADDRESS = f"""
mutation ($id: ID!) {{
  removeAddress(id: $id) {{ address {{ {ADDRESS_FIELDS} }} {ERRORS} }}
}}
"""
NODE = f"""
query ($id: ID!) {{
  node(id: $id) {{
    __typename id
    ... on User {{ email fullName }}
    ... on Address {{ {ADDRESS_FIELDS} }}
  }}
}}
"""
HOME = {
    "fullName": "Jane Doe",
    "line1": "Hauptstrasse 1",
    "line2": None,
    "city": "Berlin",
    "postalCode": "10115",
    "country": "de",
}


def unique_email(label: str = "user") -> str:
    """An email no other test uses."""
    return f"{label}-{uuid.uuid4().hex[:12]}@shop.example.com"


def unique_ip() -> str:
    """A client IP no other test uses (its own failed-login bucket)."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


class Callers:
    """Makes GraphQL clients of one app, each calling from its own IP unless told otherwise."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._clients: list[httpx.AsyncClient] = []

    def __call__(self, token: str | None = None, *, ip: str | None = None) -> GraphQLClient:
        """A caller, signed in when `token` is given."""
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=(ip or unique_ip(), 40000)),
            base_url="http://shopgraph.test",
        )
        self._clients.append(http)
        return GraphQLClient(http, {"Authorization": f"Bearer {token}"} if token else {})

    async def aclose(self) -> None:
        """Close every client made."""
        for http in self._clients:
            await http.aclose()


async def running_app(backend: Backend, **overrides: Any) -> AsyncIterator[Starlette]:
    """An app with its own settings (and its own in-process rate limiter), started and stopped."""
    app = create_app(backend.settings(**overrides))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def accounts_app(backend: Backend) -> AsyncIterator[Starlette]:
    """The app with small sign-in failure limits."""
    async for app in running_app(
        backend,
        login_max_failures_per_account=MAX_FAILURES_PER_ACCOUNT,
        login_max_failures_per_ip=MAX_FAILURES_PER_IP,
    ):
        yield app


@pytest.fixture
async def callers(accounts_app: Starlette) -> AsyncIterator[Callers]:
    """Makes callers of the accounts app."""
    made = Callers(accounts_app)
    yield made
    await made.aclose()


async def register(
    caller: GraphQLClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    full_name: str = "Jane Doe",
) -> dict[str, Any]:
    """Register through the API; the AuthPayload of a success."""
    variables = {
        "input": {"email": email or unique_email(), "password": password, "fullName": full_name}
    }
    payload: dict[str, Any] = (await caller.query(REGISTER, variables))["register"]
    assert payload["userErrors"] == [], payload
    return payload


async def login(caller: GraphQLClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """The AuthPayload of a login, success or not."""
    data = await caller.query(LOGIN, {"input": {"email": email, "password": password}})
    return data["login"]  # type: ignore[no-any-return]


async def refresh(caller: GraphQLClient, token: str) -> dict[str, Any]:
    """The AuthPayload of a refresh, success or not."""
    return (await caller.query(REFRESH, {"token": token}))["refreshToken"]  # type: ignore[no-any-return]


async def assert_unauthenticated(caller: GraphQLClient) -> None:
    """The caller's token is refused with 401 UNAUTHENTICATED (not served as anonymous)."""
    response = await caller.post(ME)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def aliased_logins(credentials: list[tuple[str, str]]) -> str:
    """One mutation document with a `login` per (email, password), aliased a0, a1, ..."""
    fields = " ".join(
        f"a{index}: login(input: {{email: {json.dumps(email)}, password: {json.dumps(password)}}}) "
        "{ accessToken userErrors { field message code } }"
        for index, (email, password) in enumerate(credentials)
    )
    return f"mutation {{ {fields} }}"


def codes(data: dict[str, Any]) -> list[str | None]:
    """The first userError code of each aliased payload, in order (None for a success)."""
    return [
        payload["userErrors"][0]["code"] if payload["userErrors"] else None
        for payload in data.values()
    ]


# --- register, sign in, me --------------------------------------------------------------


async def test_register_then_me_then_login_with_any_letter_case(callers: Callers) -> None:
    email = unique_email("Jane.Doe").replace("jane.doe", "Jane.Doe")
    anonymous = callers()

    registered = await register(anonymous, email=email, full_name="  Jane Doe ")
    me = (await callers(registered["accessToken"]).query(ME))["me"]
    signed_in = await login(anonymous, email.upper())

    assert registered["user"]["email"] == email.lower()
    assert registered["user"]["role"] == "CUSTOMER"
    assert registered["expiresIn"] == 900
    assert registered["refreshToken"] and registered["accessToken"]
    assert me == {**registered["user"], "fullName": "Jane Doe", "addresses": []}
    assert signed_in["userErrors"] == []
    assert signed_in["user"]["id"] == registered["user"]["id"]
    assert signed_in["refreshToken"] != registered["refreshToken"]


async def test_me_is_null_for_anonymous_callers(callers: Callers) -> None:
    assert (await callers().query(ME)) == {"me": None}


async def test_account_mutations_need_a_signed_in_user(callers: Callers) -> None:
    response = await callers().post(ADD_ADDRESS, {"input": HOME})

    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.json()["data"] is None


@pytest.mark.parametrize(
    ("password", "hint"),
    [
        ("short1!", "at least 10 characters"),
        ("password1234", "common"),
        ("qwertyuiop", "common"),
        ("janedoe2024", ""),  # built from the user's own name
    ],
)
async def test_weak_passwords_are_refused(callers: Callers, password: str, hint: str) -> None:
    email = unique_email("jane.doe")

    data = await callers().query(
        REGISTER, {"input": {"email": email, "password": password, "fullName": "Jane Doe"}}
    )

    [error] = data["register"]["userErrors"]
    assert error["code"] == "WEAK_PASSWORD"
    assert error["field"] == ["input", "password"]
    assert hint in error["message"]
    assert data["register"]["accessToken"] is None
    assert (await login(callers(), email, password))["userErrors"][0]["code"] == (
        "INVALID_CREDENTIALS"
    )


@pytest.mark.parametrize("email", ["not-an-email", "jane@", "@shop.example.com", "jane@localhost"])
async def test_a_malformed_email_is_invalid(callers: Callers, email: str) -> None:
    data = await callers().query(
        REGISTER, {"input": {"email": email, "password": PASSWORD, "fullName": "Jane Doe"}}
    )

    [error] = data["register"]["userErrors"]
    assert error["code"] == "INVALID"
    assert error["field"] == ["input", "email"]


async def test_an_email_is_taken_whatever_its_letter_case(callers: Callers) -> None:
    email = unique_email()
    await register(callers(), email=email)

    data = await callers().query(
        REGISTER,
        {"input": {"email": email.upper(), "password": NEW_PASSWORD, "fullName": "Other"}},
    )

    [error] = data["register"]["userErrors"]
    assert error == {
        "field": ["input", "email"],
        "message": "An account with this email already exists",
        "code": "ALREADY_EXISTS",
    }
    assert (await login(callers(), email, NEW_PASSWORD))["accessToken"] is None


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(callers: Callers) -> None:
    email = unique_email()
    await register(callers(), email=email)

    wrong_password = await login(callers(), email, NEW_PASSWORD)
    unknown_email = await login(callers(), unique_email(), NEW_PASSWORD)
    malformed_email = await login(callers(), "not an email", NEW_PASSWORD)

    expected = {
        "accessToken": None,
        "refreshToken": None,
        "expiresIn": None,
        "user": None,
        "userErrors": [
            {
                "field": None,
                "message": "The email or password is incorrect",
                "code": "INVALID_CREDENTIALS",
            }
        ],
    }
    assert wrong_password == unknown_email == malformed_email == expected


async def test_an_outdated_password_hash_is_upgraded_at_sign_in(
    callers: Callers, settings: Settings
) -> None:
    email = unique_email()
    await register(callers(), email=email)
    weak_hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(
                update(User)
                .where(User.email_hash == DataCipher.from_settings(settings).search_hash(email))
                .values(password_hash=weak_hasher.hash(PASSWORD))
            )

        signed_in = await login(callers(), email)

        async with db.engine.connect() as connection:
            stored = (
                await connection.execute(
                    select(User.password_hash).where(
                        User.email_hash == DataCipher.from_settings(settings).search_hash(email)
                    )
                )
            ).scalar_one()
    finally:
        await db.dispose()
    assert signed_in["userErrors"] == []
    assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


# --- sessions: refresh rotation, reuse, logout, password change ------------------------------


async def test_a_refresh_token_is_spent_for_new_tokens_of_the_same_session(
    callers: Callers,
) -> None:
    first = await register(callers())

    second = await refresh(callers(), first["refreshToken"])
    third = await refresh(callers(), second["refreshToken"])

    assert second["userErrors"] == [] and third["userErrors"] == []
    assert len({first["refreshToken"], second["refreshToken"], third["refreshToken"]}) == 3
    assert third["user"]["id"] == first["user"]["id"]
    assert (await callers(third["accessToken"]).query(ME))["me"]["id"] == first["user"]["id"]
    assert (await callers(first["accessToken"]).query(ME))["me"]["id"] == first["user"]["id"]


async def test_reusing_a_spent_refresh_token_ends_the_whole_session(callers: Callers) -> None:
    stolen = await register(callers())
    rotated = await refresh(callers(), stolen["refreshToken"])
    other_session = await login(callers(), stolen["user"]["email"])

    reuse = await refresh(callers(), stolen["refreshToken"])

    assert reuse["accessToken"] is None
    assert reuse["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert reuse["userErrors"][0]["field"] == ["refreshToken"]
    # The newer token and every access token of that session stop working.
    assert (await refresh(callers(), rotated["refreshToken"]))["userErrors"][0]["code"] == (
        "INVALID_CREDENTIALS"
    )
    await assert_unauthenticated(callers(rotated["accessToken"]))
    await assert_unauthenticated(callers(stolen["accessToken"]))
    # Other sessions of the same account go on.
    assert (await callers(other_session["accessToken"]).query(ME))["me"] is not None


async def test_an_unknown_refresh_token_is_refused(callers: Callers) -> None:
    payload = await refresh(callers(), "not-a-token")

    assert payload["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_logout_ends_the_session(callers: Callers) -> None:
    session = await register(callers())
    caller = callers(session["accessToken"])

    assert (await caller.query(LOGOUT, {"token": session["refreshToken"]})) == {"logout": True}

    await assert_unauthenticated(caller)
    refused = await refresh(callers(), session["refreshToken"])
    assert refused["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert (await callers().query(LOGOUT, {"token": "never-issued"})) == {"logout": False}


async def test_changing_the_password_ends_every_other_session(callers: Callers) -> None:
    this_session = await register(callers())
    email = this_session["user"]["email"]
    other_session = await login(callers(), email)
    caller = callers(this_session["accessToken"])

    wrong = await caller.query(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": "guess-" + PASSWORD, "newPassword": NEW_PASSWORD}},
    )
    changed = await caller.query(
        CHANGE_PASSWORD, {"input": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}}
    )

    assert wrong["changePassword"]["userErrors"] == [
        {
            "field": ["input", "currentPassword"],
            "message": "The current password is incorrect",
            "code": "INVALID_CREDENTIALS",
        }
    ]
    assert changed["changePassword"] == {
        "user": {"id": this_session["user"]["id"]},
        "userErrors": [],
    }
    assert (await caller.query(ME))["me"]["email"] == email
    await assert_unauthenticated(callers(other_session["accessToken"]))
    assert (await refresh(callers(), other_session["refreshToken"]))["accessToken"] is None
    assert (await login(callers(), email, PASSWORD))["accessToken"] is None
    assert (await login(callers(), email, NEW_PASSWORD))["accessToken"]


async def test_a_weak_new_password_is_refused_and_nothing_changes(callers: Callers) -> None:
    session = await register(callers())
    caller = callers(session["accessToken"])

    data = await caller.query(
        CHANGE_PASSWORD, {"input": {"currentPassword": PASSWORD, "newPassword": "password1"}}
    )

    assert data["changePassword"]["userErrors"][0]["code"] == "WEAK_PASSWORD"
    assert data["changePassword"]["userErrors"][0]["field"] == ["input", "newPassword"]
    assert (await login(callers(), session["user"]["email"]))["accessToken"]


# --- throttling --------------------------------------------------------------------------


async def test_failed_logins_are_throttled_per_account_and_ip_even_as_aliases_of_one_document(
    callers: Callers,
) -> None:
    email = unique_email()
    await register(callers(), email=email)
    attempts = [(email, f"wrong-{n}-{PASSWORD}") for n in range(MAX_FAILURES_PER_ACCOUNT)]

    data = await callers().query(aliased_logins([*attempts, (email, PASSWORD)]))
    from_elsewhere = await login(callers(), email)

    assert codes(data) == [*["INVALID_CREDENTIALS"] * MAX_FAILURES_PER_ACCOUNT, "THROTTLED"]
    assert data[f"a{MAX_FAILURES_PER_ACCOUNT}"]["accessToken"] is None
    assert "try again in" in data[f"a{MAX_FAILURES_PER_ACCOUNT}"]["userErrors"][0]["message"]
    # Only that (account, IP) pair is throttled: the owner elsewhere still signs in.
    assert from_elsewhere["userErrors"] == []
    assert from_elsewhere["accessToken"]


async def test_failed_logins_are_throttled_per_ip(callers: Callers) -> None:
    ip = unique_ip()
    attempts = [(unique_email(), PASSWORD) for _ in range(MAX_FAILURES_PER_IP + 1)]

    data = await callers(ip=ip).query(aliased_logins(attempts))
    same_ip = await login(callers(ip=ip), unique_email())
    other_ip = await login(callers(), unique_email())

    assert codes(data) == [*["INVALID_CREDENTIALS"] * MAX_FAILURES_PER_IP, "THROTTLED"]
    assert same_ip["userErrors"][0]["code"] == "THROTTLED"
    assert other_ip["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_successful_logins_are_not_counted_as_failures(callers: Callers) -> None:
    email = unique_email()
    await register(callers(), email=email)
    ip = unique_ip()

    data = await callers(ip=ip).query(
        aliased_logins([(email, PASSWORD)] * (MAX_FAILURES_PER_ACCOUNT + 1))
    )

    assert codes(data) == [None] * (MAX_FAILURES_PER_ACCOUNT + 1)


# --- profile and address book --------------------------------------------------------------


async def test_update_profile_changes_the_name_and_refuses_an_empty_one(callers: Callers) -> None:
    session = await register(callers())
    caller = callers(session["accessToken"])

    changed = await caller.query(UPDATE_PROFILE, {"input": {"fullName": " Jane Q. Doe "}})
    empty = await caller.query(UPDATE_PROFILE, {"input": {"fullName": "   "}})

    assert changed["updateProfile"]["user"]["fullName"] == "Jane Q. Doe"
    assert empty["updateProfile"] == {
        "user": None,
        "userErrors": [
            {"field": ["input", "fullName"], "message": "Must not be empty", "code": "REQUIRED"}
        ],
    }
    assert (await caller.query(ME))["me"]["fullName"] == "Jane Q. Doe"


async def test_the_address_book_adds_updates_lists_and_removes(callers: Callers) -> None:
    caller = callers((await register(callers()))["accessToken"])

    home = (await caller.query(ADD_ADDRESS, {"input": HOME}))["addAddress"]
    work = (
        await caller.query(
            ADD_ADDRESS, {"input": {**HOME, "line1": "Friedrichstrasse 50", "line2": "3. OG"}}
        )
    )["addAddress"]
    moved = (
        await caller.query(
            UPDATE_ADDRESS,
            {
                "id": home["address"]["id"],
                "input": {**HOME, "city": "Potsdam", "postalCode": "14467"},
            },
        )
    )["updateAddress"]
    listed = (await caller.query(ME))["me"]["addresses"]
    removed = (await caller.query(REMOVE_ADDRESS, {"id": work["address"]["id"]}))["removeAddress"]
    left = (await caller.query(ME))["me"]["addresses"]

    assert home["userErrors"] == [] and home["address"]["country"] == "DE"
    assert work["address"]["line2"] == "3. OG"
    assert moved["address"] == {**home["address"], "city": "Potsdam", "postalCode": "14467"}
    assert listed == [moved["address"], work["address"]]
    assert removed == {"address": work["address"], "userErrors": []}
    assert left == [moved["address"]]


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"country": "Germany"}, "country", "INVALID"),
        ({"city": " "}, "city", "REQUIRED"),
        ({"postalCode": "1" * 21}, "postalCode", "INVALID"),
    ],
)
async def test_a_bad_address_is_refused_and_nothing_is_written(
    callers: Callers, change: dict[str, str], field: str, code: str
) -> None:
    caller = callers((await register(callers()))["accessToken"])

    data = await caller.query(ADD_ADDRESS, {"input": {**HOME, **change}})

    assert data["addAddress"]["address"] is None
    [error] = data["addAddress"]["userErrors"]
    assert (error["field"], error["code"]) == (["input", field], code)
    assert (await caller.query(ME))["me"]["addresses"] == []


async def test_a_customer_cannot_touch_another_customers_address(callers: Callers) -> None:
    owner = callers((await register(callers()))["accessToken"])
    intruder = callers((await register(callers()))["accessToken"])
    address = (await owner.query(ADD_ADDRESS, {"input": HOME}))["addAddress"]["address"]

    updated = await intruder.query(
        UPDATE_ADDRESS, {"id": address["id"], "input": {**HOME, "city": "Hamburg"}}
    )
    removed = await intruder.query(REMOVE_ADDRESS, {"id": address["id"]})
    fetched = await intruder.query(NODE, {"id": address["id"]})

    not_found = [
        {"field": ["id"], "message": "No such address in your address book", "code": "NOT_FOUND"}
    ]
    assert updated["updateAddress"] == {"address": None, "userErrors": not_found}
    assert removed["removeAddress"] == {"address": None, "userErrors": not_found}
    assert fetched == {"node": None}
    assert (await owner.query(ME))["me"]["addresses"] == [address]
    assert (await owner.query(NODE, {"id": address["id"]}))["node"]["city"] == "Berlin"


async def test_an_id_of_another_type_is_an_invalid_address_id(callers: Callers) -> None:
    caller = callers((await register(callers()))["accessToken"])

    data = await caller.query(REMOVE_ADDRESS, {"id": to_global_id("Product", 1)})

    [error] = data["removeAddress"]["userErrors"]
    assert (error["field"], error["code"]) == (["id"], "INVALID")


# --- who sees what -------------------------------------------------------------------------


async def test_a_user_is_visible_to_themself_and_staff_only(
    callers: Callers, staff: GraphQLClient, customer: GraphQLClient
) -> None:
    session = await register(callers())
    user_id = session["user"]["id"]
    staff_token = staff.headers["Authorization"].removeprefix("Bearer ")
    other_token = customer.headers["Authorization"].removeprefix("Bearer ")

    by_self = await callers(session["accessToken"]).query(NODE, {"id": user_id})
    by_staff = await callers(staff_token).query(NODE, {"id": user_id})
    by_other = await callers(other_token).query(NODE, {"id": user_id})
    by_anonymous = await callers().query(NODE, {"id": user_id})

    assert by_self["node"]["email"] == session["user"]["email"]
    assert by_staff["node"] == {
        "__typename": "User",
        "id": user_id,
        "email": session["user"]["email"],
        "fullName": "Jane Doe",
    }
    assert by_other == by_anonymous == {"node": None}


def _user_schema(user: UserType) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def user(self) -> UserType | None:
            return user

    return strawberry.Schema(query=Query)


@pytest.mark.parametrize(
    ("viewer", "sees_email"),
    [
        (Viewer(user_id=1, role=Role.CUSTOMER), True),
        (Viewer(user_id=2, role=Role.CUSTOMER), False),
        (Viewer(user_id=3, role=Role.STAFF), True),
        (Viewer(), False),
    ],
)
def test_user_email_is_for_the_user_themself_and_staff(viewer: Viewer, sees_email: bool) -> None:
    # Wherever a User shows up (a future Order.customer, ...), its email obeys the same rule.
    cipher = DataCipher.from_settings(Settings())
    user = UserType(
        pk=1,
        sealed_email=cipher.encrypt("jane@shop.example.com", context="users.email"),
        sealed_name=cipher.encrypt("Jane Doe", context="users.full_name"),
        role=RoleEnum.CUSTOMER,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )

    result = _user_schema(user).execute_sync(
        "{ user { fullName email } }", context_value=SimpleNamespace(viewer=viewer, cipher=cipher)
    )

    if sees_email:
        assert result.errors is None
        assert result.data == {"user": {"fullName": "Jane Doe", "email": "jane@shop.example.com"}}
    else:
        assert result.data == {"user": None}
        assert result.errors is not None
        assert result.errors[0].extensions == {"code": "FORBIDDEN"}


async def test_one_ip_registers_a_few_accounts_then_is_throttled(backend: Backend) -> None:
    # given an app that lets one IP register 3 accounts per hour
    async for app in running_app(backend, register_max_per_ip=3):
        callers = Callers(app)
        try:
            crowd, neighbour = callers(ip="10.250.0.1"), callers(ip="10.250.0.2")
            for _ in range(3):
                await register(crowd)

            # when the same IP registers a fourth, and another IP its first
            email = unique_email("fourth")
            variables = {"input": {"email": email, "password": PASSWORD, "fullName": "Jane"}}
            refused = (await crowd.query(REGISTER, variables))["register"]
            await register(neighbour)

            # then the fourth is refused, before any account is made
            assert refused["accessToken"] is None
            [error] = refused["userErrors"]
            assert error["code"] == "THROTTLED", error
            assert "registered from this address" in error["message"]
            assert (await login(callers(), email))["accessToken"] is None
        finally:
            await callers.aclose()
