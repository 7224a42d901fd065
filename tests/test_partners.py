"""Partners: created on the command line, granted tokens by POST /oauth/token (RFC 6749 4.4), then call GraphQL."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from app.context import Viewer
from app.db import Database
from app.platform.tokens import TokenService
from app.services.auth import Authenticator
from app.settings import Settings
from tests.conftest import Backend, GraphQLClient

SHOPGRAPH = Path(sys.executable).parent / "shopgraph"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PRODUCTS = "{ products(first: 2) { totalCount edges { node { slug } } } }"
STOCK = "{ products(first: 1) { edges { node { variants { stockQuantity } } } } }"
CREATE_REVIEW = """
mutation ($input: ReviewInput!) { createReview(input: $input) { review { id } userErrors { code } } }
"""


@dataclass(frozen=True)
class Run:
    """What a finished command printed and returned."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class PartnerApp:
    """A partner's name and the credentials the CLI printed once."""

    name: str
    client_id: str
    client_secret: str


def shopgraph(settings: Settings, *args: str) -> Run:
    """Run `shopgraph ...` against the test database, as an operator would."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env["SHOPGRAPH_DATABASE_URL"] = settings.database_url
    done = subprocess.run(
        [str(SHOPGRAPH), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


def create_partner(settings: Settings, *options: str) -> tuple[PartnerApp, Run]:
    """A new partner with a unique name, made with the CLI."""
    name = f"partner-{uuid.uuid4().hex[:8]}"
    run = shopgraph(settings, "partners", "create", name, *options)
    assert run.returncode == 0, run.stderr
    values = dict(line.split("=", 1) for line in run.stdout.splitlines())
    return PartnerApp(name, values["client_id"], values["client_secret"]), run


@pytest.fixture(scope="module")
def partner(backend: Backend, settings: Settings) -> PartnerApp:
    """A partner allowed the scopes catalog:read and orders:read, on the premium tier."""
    made, _ = create_partner(
        settings, "--scope", "catalog:read", "--scope", "orders:read", "--tier", "premium"
    )
    return made


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    """An HTTP Basic header as RFC 6749 2.3.1 builds it (each part form-urlencoded first)."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def token(
    http: httpx.AsyncClient, data: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST a form to the token endpoint."""
    return await http.post("/oauth/token", data=data, headers={**FORM, **(headers or {})})


async def sql_value(settings: Settings, query: str, **params: object) -> object:
    """One value read with plain SQL."""
    db = Database.from_settings(settings)
    try:
        async with db.read() as connection:
            return (await connection.execute(text(query), params)).scalar_one()
    finally:
        await db.dispose()


async def register_documents(settings: Settings, client: str, *bodies: str) -> None:
    """Register trusted documents for `client` (as `shopgraph documents add` does, unchecked)."""
    from app.platform.persisted_queries import sha256_hex
    from app.services.documents import ManifestEntry, add_documents

    db = Database.from_settings(settings)
    try:
        entries = [ManifestEntry(sha256_hex(body), None, body) for body in bodies]
        await add_documents(
            db, client=client, entries=entries, check=lambda body, partner_scopes: None
        )
    finally:
        await db.dispose()


async def run_document(
    client: GraphQLClient, body: str, variables: dict[str, object] | None = None
) -> dict[str, object]:
    """POST a trusted document by its documentId; return the decoded response."""
    from app.platform.persisted_queries import sha256_hex

    payload = {"documentId": f"sha256:{sha256_hex(body)}", "variables": variables}
    response = await client.http.post("/graphql", json=payload, headers=client.headers)
    return response.json()  # type: ignore[no-any-return]


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """A section 5.2 error: status, JSON body with error and a description, never cached."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert body["error_description"]
    assert response.headers["cache-control"] == "no-store"


# --- the command line ------------------------------------------------------------------


def test_the_cli_prints_credentials_once_and_stores_only_a_hash(settings: Settings) -> None:
    # when
    made, run = create_partner(settings, "--scope", "catalog:read")

    # then
    assert run.stdout.splitlines() == [
        f"client_id={made.client_id}",
        f"client_secret={made.client_secret}",
    ]
    assert len(made.client_secret) >= 32
    assert run.stderr == ""


async def test_the_secret_is_stored_as_an_argon2id_hash(
    settings: Settings, partner: PartnerApp
) -> None:
    # when
    stored = str(
        await sql_value(
            settings, "SELECT secret_hash FROM partners WHERE client_id = :c", c=partner.client_id
        )
    )

    # then
    assert stored.startswith("$argon2id$")
    assert partner.client_secret not in stored


def test_a_duplicate_name_is_one_error_line(settings: Settings, partner: PartnerApp) -> None:
    # when
    run = shopgraph(settings, "partners", "create", partner.name)

    # then
    assert run.returncode != 0
    assert run.stdout == ""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == [f"error: a partner named {partner.name!r} already exists"]


def test_an_unknown_tier_is_one_error_line(settings: Settings) -> None:
    # when
    run = shopgraph(settings, "partners", "create", f"p-{uuid.uuid4().hex[:6]}", "--tier", "gold")

    # then
    assert run.returncode != 0
    assert [line for line in run.stderr.splitlines() if line.strip()] == [
        "error: unknown tier 'gold': use one of premium, standard"
    ]


# --- the token endpoint ------------------------------------------------------------------


async def test_a_token_with_basic_authentication(
    app_client: httpx.AsyncClient, settings: Settings, partner: PartnerApp
) -> None:
    # when
    response = await token(
        app_client,
        {"grant_type": "client_credentials"},
        basic(partner.client_id, partner.client_secret),
    )

    # then
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.partner_token_ttl_seconds
    assert body["scope"] == "catalog:read orders:read"
    claims = TokenService(settings).verify(body["access_token"])
    assert claims.kind == "partner"
    assert claims.scopes == {"catalog:read", "orders:read"}
    assert claims.rate_tier == "premium"


async def test_basic_credentials_are_url_decoded(
    app_client: httpx.AsyncClient, partner: PartnerApp
) -> None:
    # given credentials with every character percent-encoded, as 2.3.1 allows
    def encoded(value: str) -> str:
        return "".join(f"%{byte:02X}" for byte in value.encode())

    raw = f"{encoded(partner.client_id)}:{encoded(partner.client_secret)}".encode()
    header = {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    # when
    response = await token(app_client, {"grant_type": "client_credentials"}, header)

    # then
    assert response.status_code == 200, response.text


async def test_a_token_with_credentials_in_the_body_and_a_narrower_scope(
    app_client: httpx.AsyncClient, settings: Settings, partner: PartnerApp
) -> None:
    # when
    response = await token(
        app_client,
        {
            "grant_type": "client_credentials",
            "client_id": partner.client_id,
            "client_secret": partner.client_secret,
            "scope": "catalog:read",
        },
    )

    # then
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "catalog:read"
    claims = TokenService(settings).verify(response.json()["access_token"])
    assert claims.scopes == {"catalog:read"}


@pytest.mark.parametrize(
    "how", ["basic", "body", "unknown-client"], ids=["basic", "body", "unknown-client"]
)
async def test_a_wrong_secret_is_invalid_client(
    app_client: httpx.AsyncClient, partner: PartnerApp, how: str
) -> None:
    # given
    client_id = partner.client_id if how != "unknown-client" else "sgp_nobody"
    form = {"grant_type": "client_credentials"}
    headers: dict[str, str] = {}
    if how == "body":
        form |= {"client_id": client_id, "client_secret": "wrong"}
    else:
        headers = basic(client_id, "wrong" if how == "basic" else partner.client_secret)

    # when
    response = await token(app_client, form, headers)

    # then
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "access_token" not in response.json()


async def test_no_client_authentication_is_invalid_client(app_client: httpx.AsyncClient) -> None:
    # when
    response = await token(app_client, {"grant_type": "client_credentials"})

    # then
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "username": "u", "password": "p"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "catalog:write"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "catalog:read admin"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "bad\\scope"}, 400, "invalid_scope"),
    ],
    ids=["password-grant", "code-grant", "no-grant-type", "empty-grant-type", "scope-beyond", "one-scope-beyond", "malformed-scope"],
)  # fmt: skip
async def test_bad_token_requests_get_section_5_2_errors(
    app_client: httpx.AsyncClient,
    partner: PartnerApp,
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    # when
    response = await token(app_client, form, basic(partner.client_id, partner.client_secret))

    # then
    assert_oauth_error(response, status, error)


async def test_two_client_authentications_are_invalid_request(
    app_client: httpx.AsyncClient, partner: PartnerApp
) -> None:
    # when
    response = await token(
        app_client,
        {
            "grant_type": "client_credentials",
            "client_id": partner.client_id,
            "client_secret": partner.client_secret,
        },
        basic(partner.client_id, partner.client_secret),
    )

    # then
    assert_oauth_error(response, 400, "invalid_request")


async def test_a_repeated_parameter_is_invalid_request(
    app_client: httpx.AsyncClient, partner: PartnerApp
) -> None:
    # when
    response = await app_client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={**FORM, **basic(partner.client_id, partner.client_secret)},
    )

    # then
    assert_oauth_error(response, 400, "invalid_request")


async def test_a_json_body_is_invalid_request(
    app_client: httpx.AsyncClient, partner: PartnerApp
) -> None:
    # when
    response = await app_client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        headers=basic(partner.client_id, partner.client_secret),
    )

    # then
    assert_oauth_error(response, 400, "invalid_request")


async def test_a_revoked_partner_gets_no_token_and_its_tokens_stop_working(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    # given a partner holding a token
    made, _ = create_partner(settings, "--scope", "catalog:read")
    granted = await token(
        app_client, {"grant_type": "client_credentials"}, basic(made.client_id, made.client_secret)
    )
    access_token = granted.json()["access_token"]

    # when it is revoked
    run = shopgraph(settings, "partners", "revoke", made.name)

    # then
    assert run.returncode == 0, run.stderr
    refused = await token(
        app_client, {"grant_type": "client_credentials"}, basic(made.client_id, made.client_secret)
    )
    assert_oauth_error(refused, 401, "invalid_client")
    graphql = await app_client.post(
        "/graphql",
        json={"query": PRODUCTS},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert graphql.status_code == 401


# --- the partner calls GraphQL -------------------------------------------------------------


async def test_the_partner_reads_the_catalog_with_its_token(
    app_client: httpx.AsyncClient, settings: Settings, partner: PartnerApp, anonymous: GraphQLClient
) -> None:
    # given
    granted = await token(
        app_client,
        {"grant_type": "client_credentials", "scope": "catalog:read"},
        basic(partner.client_id, partner.client_secret),
    )
    access_token = granted.json()["access_token"]
    client = GraphQLClient(app_client, {"Authorization": f"Bearer {access_token}"})
    # (a partner runs only its trusted documents: tests/test_trusted_documents.py)
    await register_documents(settings, partner.name, PRODUCTS, STOCK, CREATE_REVIEW)

    # when
    data = (await run_document(client, PRODUCTS))["data"]
    stock_errors = (await run_document(client, STOCK))["errors"]
    review_errors = (
        await run_document(
            client,
            CREATE_REVIEW,
            {"input": {"productId": "UHJvZHVjdDox", "rating": 5, "title": "x", "body": ""}},
        )
    )["errors"]

    # then it reads what the public reads; stock and customers' fields are outside its
    # scopes (tests/test_partner_scopes.py has the rest)
    assert data == await anonymous.query(PRODUCTS)
    assert stock_errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert review_errors[0]["extensions"]["code"] == "FORBIDDEN"
    # and the server sees a partner viewer
    partner_id = await sql_value(
        settings, "SELECT id FROM partners WHERE client_id = :c", c=partner.client_id
    )
    db = Database.from_settings(settings)
    try:
        viewer = await Authenticator(db, TokenService(settings)).viewer_for(
            f"Bearer {access_token}"
        )
    finally:
        await db.dispose()
    assert isinstance(viewer, Viewer)
    assert viewer.is_partner and not viewer.is_authenticated and not viewer.is_staff
    assert viewer.partner_id == partner_id
    assert viewer.rate_tier == "premium"
