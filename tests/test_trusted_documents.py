"""Trusted documents: registered on the command line from a manifest, checked at registration,
run by `documentId` or APQ hash; partners (and, where the setting says so, anonymous callers)
run nothing else. A trusted document is prepared once and never charged a parse.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from app.platform.persisted_queries import sha256_hex
from app.settings import Settings
from tests.conftest import Backend, GraphQLClient, in_thread, serving_app, signed_in_client
from tests.test_partners import (
    PartnerApp,
    Run,
    basic,
    create_partner,
    register_documents,
    token,
)

ACCEPT = GraphQLClient.ACCEPT


def unique(body: str) -> str:
    """`body` made new to the database (each test registers documents of its own)."""
    return f"{body} # {uuid.uuid4().hex}"


def apollo_manifest(*bodies: str) -> dict[str, Any]:
    """Apollo's persisted-query manifest of these operations, as its generator writes it."""
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256_hex(body), "name": f"Op{number}", "type": "query", "body": body}
            for number, body in enumerate(bodies)
        ],
    }


def write(tmp_path: Path, manifest: object) -> str:
    path = tmp_path / f"manifest-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return str(path)


class Cli:
    """`shopgraph ...` in this process, through the console script's entry point (one
    interpreter start per command would cost seconds), off the test's event loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def __call__(self, settings: Settings, *args: str) -> Run:
        for name in [name for name in os.environ if name.startswith("SHOPGRAPH_")]:
            self.monkeypatch.delenv(name)
        self.monkeypatch.setenv("SHOPGRAPH_DATABASE_URL", settings.database_url)
        self.monkeypatch.setattr(sys, "argv", ["shopgraph", *args])
        self.capsys.readouterr()
        code = in_thread(_exit_code)
        out = self.capsys.readouterr()
        return Run(code, out.out, out.err)


def _exit_code() -> int:
    try:
        main()
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


@pytest.fixture
def shopgraph(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Runs the `shopgraph` command against a test database."""
    return Cli(monkeypatch, capsys)


def add(cli: Cli, settings: Settings, tmp_path: Path, manifest: object, client: str) -> Run:
    return cli(settings, "documents", "add", write(tmp_path, manifest), "--client", client)


def listed(cli: Cli, settings: Settings, client: str) -> list[list[str]]:
    run = cli(settings, "documents", "list", "--client", client)
    assert run.returncode == 0, run.stderr
    return [line.split("\t") for line in run.stdout.splitlines()]


def by_id(body: str) -> dict[str, Any]:
    return {"documentId": f"sha256:{sha256_hex(body)}"}


def by_apq_hash(body: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(body)}}}


def only_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "data" not in body, body
    assert len(body["errors"]) == 1, body
    return body["errors"][0]  # type: ignore[no-any-return]


def serve(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An anonymous HTTP client on a fresh app with these settings (`.app` is the app)."""
    return serving_app(settings, headers={"Accept": ACCEPT})


@pytest.fixture(scope="module")
async def http(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The app as served (anonymous callers may send their own queries)."""
    async with serve(backend.settings()) as client:
        yield client


@pytest.fixture(scope="module")
def acme(backend: Backend, settings: Settings) -> PartnerApp:
    made, _ = create_partner(settings, "--scope", "catalog:read")
    return made


async def partner_client(http: httpx.AsyncClient, partner: PartnerApp) -> httpx.AsyncClient:
    """An HTTP client on the same app with the partner's access token."""
    granted = await token(
        http, {"grant_type": "client_credentials"}, basic(partner.client_id, partner.client_secret)
    )
    assert granted.status_code == 200, granted.text
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=http.app),  # type: ignore[attr-defined]
        base_url="http://shopgraph.test",
        headers={"Accept": ACCEPT, "Authorization": f"Bearer {granted.json()['access_token']}"},
    )


COUNT = "query Count { products(first: 1) { totalCount } }"
SLUGS = "query Slugs($first: Int) { products(first: $first) { edges { node { slug } } } }"


# --- registration --------------------------------------------------------------------------


def test_an_apollo_manifest_is_registered_listed_and_registered_again_idempotently(
    settings: Settings, tmp_path: Path, shopgraph: Cli, acme: PartnerApp
) -> None:
    count, slugs = unique(COUNT), unique(SLUGS)
    manifest = apollo_manifest(count, slugs)

    first = add(shopgraph, settings, tmp_path, manifest, acme.name)
    again = add(shopgraph, settings, tmp_path, manifest, acme.name)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"registered 2 documents for partner {acme.name!r} (0 were registered already)"
    )
    assert "registered 0 documents" in again.stdout and "(2 were" in again.stdout
    rows = {row[2]: row for row in listed(shopgraph, settings, acme.name)}
    assert rows[f"sha256:{sha256_hex(count)}"][:4] == [
        acme.name,
        "partner",
        f"sha256:{sha256_hex(count)}",
        "Op0",
    ]
    assert f"sha256:{sha256_hex(slugs)}" in rows


def test_a_plain_map_is_registered_for_a_first_party_app(
    settings: Settings, tmp_path: Path, shopgraph: Cli
) -> None:
    client = f"web-{uuid.uuid4().hex[:8]}"
    count = unique(COUNT)

    run = add(shopgraph, settings, tmp_path, {f"sha256:{sha256_hex(count)}": count}, client)

    assert run.returncode == 0, run.stderr
    assert f"for first-party client {client!r}" in run.stdout
    assert [row[:3] for row in listed(shopgraph, settings, client)] == [
        [client, "first-party", f"sha256:{sha256_hex(count)}"]
    ]


# 282 points at the default page size, 1402 when $n is the maximum page size (100).
COSTLY = """query Costly($n: Int) {
  products(first: $n) { edges { node { category { products(first: 10) { edges { node { name } } } } } } }
}"""
MANY_ALIASES = "{ " + " ".join(f"a{n}: __typename" for n in range(40)) + " }"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("{ products(first: 1) { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ products(first: 1) { totalCount }", "GRAPHQL_PARSE_FAILED"),
        (COSTLY, "QUERY_TOO_COMPLEX"),
        (MANY_ALIASES, "QUERY_TOO_COMPLEX"),
    ],
    ids=["schema", "syntax", "cost", "limits"],
)
def test_a_manifest_with_one_bad_document_is_refused_whole(
    settings: Settings, tmp_path: Path, shopgraph: Cli, bad: str, reason: str
) -> None:
    client = f"app-{uuid.uuid4().hex[:8]}"
    good, bad = unique(COUNT), unique(bad)

    run = add(shopgraph, settings, tmp_path, apollo_manifest(good, bad), client)

    # then one line names the failing hash and why, and nothing was registered
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert sha256_hex(bad) in lines[0] and reason in lines[0], lines[0]
    assert "nothing was registered" in lines[0]
    assert listed(shopgraph, settings, client) == []


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        ({"0" * 64: COUNT}, "does not match its document"),
        ({"abc": COUNT}, "64 lower-case hex digits"),
        ({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}, "version"),
        ([COUNT], "must be a JSON object"),
        ({}, "no documents"),
    ],
    ids=["tampered-hash", "not-a-hash", "wrong-version", "not-an-object", "empty"],
)
def test_a_malformed_manifest_is_refused_in_one_line(
    settings: Settings, tmp_path: Path, shopgraph: Cli, manifest: object, says: str
) -> None:
    client = f"app-{uuid.uuid4().hex[:8]}"

    run = add(shopgraph, settings, tmp_path, manifest, client)

    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert says in run.stderr
    assert listed(shopgraph, settings, client) == []


def test_a_missing_manifest_file_is_one_line(
    settings: Settings, tmp_path: Path, shopgraph: Cli
) -> None:
    run = shopgraph(settings, "documents", "add", str(tmp_path / "nope.json"), "--client", "web")

    assert run.returncode == 2
    assert run.stderr.strip().startswith("error: cannot read"), run.stderr


# --- a partner's scopes, checked at registration -------------------------------------------

STOCK = "query Stock { products(first: 1) { edges { node { variants { sku stockQuantity } } } } }"
STOCK_IF = """query StockIf($withStock: Boolean!) {
  products(first: 1) { edges { node { variants { sku stockQuantity @include(if: $withStock) } } } }
}"""
CREATE_REVIEW = """mutation Review($input: ReviewInput!) {
  createReview(input: $input) { review { id } userErrors { code } }
}"""


@pytest.fixture(scope="module")
def stockist(backend: Backend, settings: Settings) -> PartnerApp:
    """A partner holding catalog:read and inventory:read."""
    made, _ = create_partner(settings, "--scope", "catalog:read", "--scope", "inventory:read")
    return made


def test_a_document_outside_the_partners_scopes_refuses_the_manifest(
    settings: Settings, tmp_path: Path, shopgraph: Cli, acme: PartnerApp
) -> None:
    # given a partner holding catalog:read, and a manifest with a document reading stock
    good, stock = unique(COUNT), unique(STOCK)

    # when it is registered for the partner
    run = add(shopgraph, settings, tmp_path, apollo_manifest(good, stock), acme.name)

    # then one line names the hash, the missing scope and the partner's, and nothing is stored
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert f"{sha256_hex(stock)}: FORBIDDEN: operation 'Stock'" in line, line
    assert "ProductVariant.stockQuantity: needs the scope inventory:read" in line, line
    assert "outside the partner's scopes (catalog:read)" in line, line
    assert line.endswith("; nothing was registered"), line
    registered = {row[2] for row in listed(shopgraph, settings, acme.name)}
    assert {f"sha256:{sha256_hex(good)}", f"sha256:{sha256_hex(stock)}"}.isdisjoint(registered)


async def test_a_document_within_the_partners_scopes_is_registered_and_runs(
    http: httpx.AsyncClient,
    settings: Settings,
    tmp_path: Path,
    shopgraph: Cli,
    stockist: PartnerApp,
) -> None:
    # given a partner holding catalog:read and inventory:read
    stock = unique(STOCK)

    # when the stock document is registered for it
    run = add(shopgraph, settings, tmp_path, apollo_manifest(stock), stockist.name)

    # then it is stored, listed with the scopes it needs, and the partner runs it
    assert run.returncode == 0, run.stderr
    assert "registered 1 documents for partner" in run.stdout
    [row] = [
        row
        for row in listed(shopgraph, settings, stockist.name)
        if row[2] == f"sha256:{sha256_hex(stock)}"
    ]
    assert row[5] == "needs catalog:read,inventory:read", row
    partner = await partner_client(http, stockist)
    ran = await partner.post("/graphql", json=by_id(stock))
    await partner.aclose()
    assert ran.status_code == 200, ran.text
    variants = ran.json()["data"]["products"]["edges"][0]["node"]["variants"]
    assert isinstance(variants[0]["stockQuantity"], int), ran.text


def test_a_first_party_app_registers_documents_of_any_scope(
    settings: Settings, tmp_path: Path, shopgraph: Cli
) -> None:
    # given a client name that is no partner's: its callers have no scopes to check
    client = f"ios-{uuid.uuid4().hex[:8]}"
    stock = unique(STOCK)

    run = add(shopgraph, settings, tmp_path, {sha256_hex(stock): stock}, client)

    assert run.returncode == 0, run.stderr
    assert [row[1:] for row in listed(shopgraph, settings, client)] == [
        ["first-party", f"sha256:{sha256_hex(stock)}", "-", f"{len(stock)} B", "-"]
    ]


def test_fields_for_people_refuse_a_partners_manifest(
    settings: Settings, tmp_path: Path, shopgraph: Cli, stockist: PartnerApp
) -> None:
    review = unique(CREATE_REVIEW)

    run = add(shopgraph, settings, tmp_path, apollo_manifest(review), stockist.name)

    assert run.returncode == 2
    assert sha256_hex(review) in run.stderr
    assert "Mutation.createReview: not open to partner tokens" in run.stderr, run.stderr


def test_a_field_under_a_variable_include_is_left_to_the_request(
    settings: Settings, tmp_path: Path, shopgraph: Cli, acme: PartnerApp
) -> None:
    # given a document that reads stock only when a request asks for it
    stock_if = unique(STOCK_IF)

    # when it is registered for a partner without inventory:read
    run = add(shopgraph, settings, tmp_path, apollo_manifest(stock_if), acme.name)

    # then it is accepted (it runs with withStock false; true is refused per request)
    assert run.returncode == 0, run.stderr
    rows = {row[2]: row for row in listed(shopgraph, settings, acme.name)}
    assert rows[f"sha256:{sha256_hex(stock_if)}"][5] == "needs catalog:read"


async def test_the_list_shows_a_scope_a_partner_lacks_for_a_document_stored_unchecked(
    settings: Settings, shopgraph: Cli, acme: PartnerApp
) -> None:
    # given a stock document stored for the catalog-only partner without the checks (as
    # registrations made before the scope check may be)
    stock = unique(STOCK)
    await register_documents(settings, acme.name, stock)

    rows = {row[2]: row for row in listed(shopgraph, settings, acme.name)}

    assert rows[f"sha256:{sha256_hex(stock)}"][5] == (
        "needs catalog:read,inventory:read (the partner lacks inventory:read)"
    )


# --- partners run only their own documents ---------------------------------------------------


async def test_a_partner_runs_its_registered_documents_and_nothing_else(
    http: httpx.AsyncClient, settings: Settings, tmp_path: Path, shopgraph: Cli, acme: PartnerApp
) -> None:
    mine, first_party = unique(SLUGS), unique(COUNT)
    assert add(shopgraph, settings, tmp_path, apollo_manifest(mine), acme.name).returncode == 0
    assert (
        add(shopgraph, settings, tmp_path, {sha256_hex(first_party): first_party}, "web").returncode
        == 0
    )
    unregistered = unique(COUNT)
    partner = await partner_client(http, acme)

    # a registered document, by documentId and by APQ hash
    ran = await partner.post("/graphql", json={**by_id(mine), "variables": {"first": 2}})
    ran_by_hash = await partner.post(
        "/graphql", json={**by_apq_hash(mine), "variables": {"first": 1}}
    )
    # its own query; an id it has not registered; a first-party document
    own_query = await partner.post("/graphql", json={"query": COUNT})
    not_registered = await partner.post("/graphql", json=by_id(unregistered))
    apq_registration = await partner.post(
        "/graphql", json={"query": unregistered, **by_apq_hash(unregistered)}
    )
    not_its_own = await partner.post("/graphql", json=by_id(first_party))
    # a registered hash with another query under it (a tampered hash), and a tampered id
    tampered_query = await partner.post("/graphql", json={"query": COUNT, **by_apq_hash(mine)})
    tampered_id = await partner.post(
        "/graphql", json={"documentId": f"sha256:{sha256_hex(mine)[:-1]}0"}
    )

    assert len(ran.json()["data"]["products"]["edges"]) == 2, ran.text
    assert len(ran_by_hash.json()["data"]["products"]["edges"]) == 1, ran_by_hash.text
    assert own_query.status_code == 400
    error = only_error(own_query)
    assert error["extensions"]["code"] == "PERSISTED_QUERY_ID_REQUIRED"
    assert "only its registered (trusted) documents" in error["message"]
    for refused in (not_registered, apq_registration, not_its_own):
        assert refused.status_code == 404, refused.text
        assert only_error(refused)["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert sha256_hex(unregistered) in only_error(not_registered)["message"]
    assert only_error(tampered_query)["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    if sha256_hex(mine)[-1] != "0":
        assert only_error(tampered_id)["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    await partner.aclose()


async def test_a_removed_document_stops_running_at_once(
    http: httpx.AsyncClient, settings: Settings, tmp_path: Path, shopgraph: Cli, acme: PartnerApp
) -> None:
    document = unique(COUNT)
    assert add(shopgraph, settings, tmp_path, apollo_manifest(document), acme.name).returncode == 0
    partner = await partner_client(http, acme)
    before = await partner.post("/graphql", json=by_id(document))

    removed = shopgraph(
        settings, "documents", "remove", f"sha256:{sha256_hex(document)}", "--client", acme.name
    )
    after = await partner.post("/graphql", json=by_id(document))
    again = shopgraph(settings, "documents", "remove", sha256_hex(document), "--client", acme.name)
    await partner.aclose()

    assert before.json()["data"]["products"]["totalCount"] > 0, before.text
    assert removed.returncode == 0, removed.stderr
    assert only_error(after)["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert again.returncode == 2 and "has no document" in again.stderr
    assert f"sha256:{sha256_hex(document)}" not in {
        row[2] for row in listed(shopgraph, settings, acme.name)
    }


# --- anonymous callers, trusted-documents-only ---------------------------------------------


async def test_trusted_documents_only_limits_anonymous_callers_not_signed_in_ones(
    backend: Backend, tmp_path: Path, shopgraph: Cli, acme: PartnerApp
) -> None:
    settings = backend.settings(trusted_documents_only=True)
    first_party, partners_own = unique(COUNT), unique(COUNT)
    assert (
        add(shopgraph, settings, tmp_path, {sha256_hex(first_party): first_party}, "ios").returncode
        == 0
    )
    assert (
        add(shopgraph, settings, tmp_path, apollo_manifest(partners_own), acme.name).returncode == 0
    )
    async with serve(settings) as http:
        customer = await signed_in_client(
            http, settings, role="CUSTOMER", email="trusted-only@test.example"
        )

        # when anonymous callers send a query, a first-party id, a partner's id
        own_query = await http.post("/graphql", json={"query": COUNT})
        registered = await http.post("/graphql", json=by_id(first_party))
        by_hash = await http.post("/graphql", json=by_apq_hash(first_party))
        partners = await http.post("/graphql", json=by_id(partners_own))
        # and a signed-in customer sends a query of its own
        signed_in = await customer.post(COUNT)

    assert only_error(own_query)["extensions"]["code"] == "PERSISTED_QUERY_ID_REQUIRED"
    assert registered.json()["data"]["products"]["totalCount"] > 0, registered.text
    assert by_hash.json()["data"] == registered.json()["data"]
    assert only_error(partners)["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert signed_in.json()["data"]["products"]["totalCount"] > 0, signed_in.text


async def test_without_the_setting_anyone_runs_first_party_documents_by_id(
    http: httpx.AsyncClient, settings: Settings, tmp_path: Path, shopgraph: Cli
) -> None:
    document = unique(SLUGS)
    assert (
        add(shopgraph, settings, tmp_path, {sha256_hex(document): document}, "web").returncode == 0
    )

    ran = await http.post("/graphql", json={**by_id(document), "variables": {"first": 1}})
    query = await http.post("/graphql", json={"query": COUNT})

    assert len(ran.json()["data"]["products"]["edges"]) == 1, ran.text
    assert query.json()["data"]["products"]["totalCount"] > 0


# --- prepared once -------------------------------------------------------------------------


async def test_a_trusted_document_is_prepared_once_and_never_charged_a_parse(
    backend: Backend, tmp_path: Path, shopgraph: Cli
) -> None:
    # given an engine that keeps no document in its cache (every other text is parsed again)
    settings = backend.settings(document_cache_size=0)
    document = unique(SLUGS)
    assert (
        add(shopgraph, settings, tmp_path, {sha256_hex(document): document}, "web").returncode == 0
    )
    async with serve(settings) as http:
        documents = http.app.state.executor.documents  # type: ignore[attr-defined]
        before = documents.prepared

        # when it runs three times, and a plain query twice
        runs = [
            (await http.post("/graphql", json={**by_id(document), "variables": {"first": 1}}))
            for _ in range(3)
        ]
        plain = [(await http.post("/graphql", json={"query": COUNT})) for _ in range(2)]
        prepared = documents.prepared - before

    # then the trusted one was prepared once and charged only the request's point
    assert [r.json()["extensions"]["cost"]["admissionCost"] for r in runs] == [1, 1, 1]
    assert [r.json()["extensions"]["cost"]["admissionCost"] for r in plain] == [2, 2]
    assert prepared == 1 + 2
