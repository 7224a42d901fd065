"""Partner scopes: a closed list, refused at `partners create` when unknown, declared on fields,
and checked before execution: a field outside the token's scopes is FORBIDDEN (403)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType
from sqlalchemy import text

from app.db import Database
from app.engine.compat import core_schema, field_definition
from app.main import create_app
from app.platform.errors import DomainError
from app.platform.passwords import password_hasher
from app.platform.persisted_queries import sha256_hex
from app.platform.scopes import DESCRIPTIONS, USERS_ONLY, Scope
from app.schema import build_schema
from app.schema.scopes import SCOPE_KEY
from app.services.partners import create_partner as create_partner_service
from app.settings import Settings
from tests.conftest import GraphQLClient
from tests.test_partners import (
    PartnerApp,
    basic,
    create_partner,
    register_documents,
    shopgraph,
    sql_value,
    token,
)

README = Path(__file__).resolve().parent.parent / "README.md"
CATALOG = "{ products(first: 2) { edges { node { slug variants { sku price { amount } } } } } }"
STOCK = "{ products(first: 1) { edges { node { variants { sku stockQuantity } } } } }"
REVIEWS = "{ products(first: 1) { edges { node { reviews(first: 1) { totalCount } } } } }"
STOCK_BY_FRAGMENT = """
query { products(first: 1) { edges { node { variants { ...Stock } } } } }
fragment Stock on ProductVariant { sku stockQuantity }
"""
NODE = "query ($id: ID!) { node(id: $id) { id ... on ProductVariant { sku stockQuantity } } }"
NODE_NO_STOCK = "query ($id: ID!) { node(id: $id) { id ... on ProductVariant { sku } } }"
REVIEW_BY_NODE = "query ($id: ID!) { node(id: $id) { ... on Review { rating } } }"
STOCK_IF = """
query ($withStock: Boolean!) {
  products(first: 1) { edges { node { variants { sku stockQuantity @include(if: $withStock) } } } }
}
"""
STOCK_UNLESS_DEFAULT = """
query ($noStock: Boolean = false) {
  products(first: 1) { edges { node { variants { sku ... @skip(if: $noStock) { stockQuantity } } } } }
}
"""
STOCK_LITERALLY_SKIPPED = "{ products(first: 1) { edges { node { variants { sku stockQuantity @include(if: false) } } } } }"
CREATE_REVIEW = """
mutation ($input: ReviewInput!) { createReview(input: $input) { review { id } userErrors { code } } }
"""
INTROSPECTION = "{ __typename __schema { queryType { name } } }"
IDS = """
{ products(first: 1) { edges { node { variants { id } reviews(first: 1) { edges { node { id } } } } } } }
"""
ALL_SCOPES = ("catalog:read", "inventory:read", "reviews:read")


@dataclass(frozen=True)
class Partner:
    """A partner made by the CLI, and the settings of the database it lives in."""

    made: PartnerApp
    settings: Settings


@pytest.fixture(scope="module")
def partner(settings: Settings) -> Partner:
    """A partner holding catalog:read, inventory:read and reviews:read."""
    made, _ = create_partner(settings, *(f"--scope={scope}" for scope in ALL_SCOPES))
    return Partner(made, settings)


class TrustedDocumentClient(GraphQLClient):
    """A partner's client: a partner runs only its registered documents, so each document
    is registered for it (the scope check is the same for any document) and sent by id."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str], partner: Partner) -> None:
        super().__init__(http, headers)
        self.partner = partner
        self.registered: set[str] = set()

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Register `query` for the partner (once), then POST its documentId."""
        if query not in self.registered:
            await register_documents(self.partner.settings, self.partner.made.name, query)
            self.registered.add(query)
        payload: dict[str, Any] = {"documentId": f"sha256:{sha256_hex(query)}"}
        if variables is not None:
            payload["variables"] = variables
        return await self.http.post("/graphql", json=payload, headers=self.headers, **kwargs)


async def partner_client(
    http: httpx.AsyncClient, partner: Partner, scope: str | None = None
) -> GraphQLClient:
    """A GraphQL client with a token from /oauth/token (narrowed to `scope` when given)."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    credentials = basic(partner.made.client_id, partner.made.client_secret)
    granted = await token(http, form, credentials)
    assert granted.status_code == 200, granted.text
    headers = {"Authorization": f"Bearer {granted.json()['access_token']}"}
    return TrustedDocumentClient(http, headers, partner)


@pytest.fixture(scope="module")
async def ids(app_client: httpx.AsyncClient) -> dict[str, str]:
    """A variant's and a review's global IDs, as anyone reads them."""
    node = (await GraphQLClient(app_client).query(IDS))["products"]["edges"][0]["node"]
    return {
        "variant": node["variants"][0]["id"],
        "review": node["reviews"]["edges"][0]["node"]["id"],
    }


def assert_forbidden(
    response: httpx.Response, fields: list[str], missing: list[str]
) -> dict[str, Any]:
    """A 403 refusal before execution naming the fields and the scopes they need."""
    body = response.json()
    assert response.status_code == 403, body
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["fields"] == fields
    assert error["extensions"]["missingScopes"] == missing
    for name in [*fields, *missing]:
        assert name in error["message"], error["message"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope"')
    if missing:
        assert f'scope="{" ".join(missing)}"' in challenge
    return error  # type: ignore[no-any-return]


# --- the closed list -----------------------------------------------------------------------


def test_an_unknown_scope_is_refused_by_the_cli_in_one_line(settings: Settings) -> None:
    # when
    name = f"p-{uuid.uuid4().hex[:8]}"
    run = shopgraph(
        settings, "partners", "create", name, "--scope", "catalog:read", "--scope", "bogus:scope"
    )

    # then
    assert run.returncode != 0
    assert run.stdout == ""
    assert [line for line in run.stderr.splitlines() if line.strip()] == [
        "error: unknown scope 'bogus:scope': use one of "
        "catalog:read, inventory:read, reviews:read, orders:read, orders:write"
    ]


async def test_an_unknown_scope_is_refused_by_the_service_and_nothing_is_stored(
    settings: Settings,
) -> None:
    # given
    db = Database.from_settings(settings)
    name = f"p-{uuid.uuid4().hex[:8]}"

    # when
    try:
        with pytest.raises(DomainError) as refused:
            await create_partner_service(
                db,
                name=name,
                scopes=["catalog:read", "catalog:write"],
                rate_tier="standard",
                known_tiers=frozenset(settings.partner_tiers),
                hasher=password_hasher(1),
            )
    finally:
        await db.dispose()

    # then
    assert refused.value.field == "scope"
    assert "'catalog:write'" in refused.value.message
    count = await sql_value(settings, "SELECT count(*) FROM partners WHERE name = :n", n=name)
    assert count == 0


async def test_a_stored_unknown_scope_is_refused_at_token_grant(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    # given a partner stored before the list was closed, with a scope that means nothing now
    made, _ = create_partner(settings, "--scope", "catalog:read")
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(
                text("UPDATE partners SET scopes = :s WHERE name = :n"),
                {"s": '["catalog:read", "bogus:scope"]', "n": made.name},
            )
    finally:
        await db.dispose()
    credentials = basic(made.client_id, made.client_secret)

    # when
    full = await token(app_client, {"grant_type": "client_credentials"}, credentials)
    known = await token(
        app_client, {"grant_type": "client_credentials", "scope": "catalog:read"}, credentials
    )

    # then its full scope is refused, naming the unknown scope; a known one is granted
    assert full.status_code == 400, full.text
    assert full.json()["error"] == "invalid_scope"
    assert "bogus:scope" in full.json()["error_description"]
    assert known.status_code == 200, known.text
    assert known.json()["scope"] == "catalog:read"


def test_the_readme_table_lists_exactly_the_closed_list() -> None:
    # given the README's "Partner scopes" table
    text_ = README.read_text(encoding="utf-8")
    section = text_.split("### Partner scopes", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| `([a-z]+:[a-z]+)` \|", section, flags=re.MULTILINE)

    # then
    assert listed == [scope.value for scope in Scope]
    assert set(DESCRIPTIONS) == set(Scope)


# --- declarations --------------------------------------------------------------------------


def test_every_root_field_declares_its_scope() -> None:
    # given the schema's root fields
    schema = core_schema(build_schema())
    roots = [schema.query_type, schema.mutation_type]

    # when their declarations are read
    undeclared = []
    for root in roots:
        assert root is not None
        for name, field in root.fields.items():
            definition = field_definition(field)
            value = (definition.metadata or {}).get(SCOPE_KEY) if definition else None
            if value not in {*Scope, USERS_ONLY}:
                undeclared.append(f"{root.name}.{name}")

    # then none forgot one
    assert undeclared == []


def test_every_review_field_needs_reviews_read() -> None:
    # A review is reachable by node(id) under catalog:read: its own fields must declare.
    review = core_schema(build_schema()).type_map["Review"]
    assert isinstance(review, GraphQLObjectType)
    declared: dict[str, object] = {}
    for name, field in review.fields.items():
        definition = field_definition(field)
        if name != "id":
            declared[name] = (definition.metadata or {}).get(SCOPE_KEY) if definition else None

    assert len(declared) >= 6
    assert set(declared.values()) == {Scope.REVIEWS_READ}, declared


# --- checked per request -------------------------------------------------------------------


async def test_a_catalog_token_runs_a_catalog_query(
    app_client: httpx.AsyncClient, partner: Partner, anonymous: GraphQLClient
) -> None:
    # given
    client = await partner_client(app_client, partner, "catalog:read")

    # when
    data = await client.query(CATALOG)

    # then
    assert data == await anonymous.query(CATALOG)
    assert data["products"]["edges"]


@pytest.mark.parametrize("accept", ["application/graphql-response+json", "application/json"])
async def test_a_field_outside_the_scopes_is_forbidden_with_no_data(
    app_client: httpx.AsyncClient, partner: Partner, accept: str
) -> None:
    # given a token narrowed to catalog:read
    client = await partner_client(app_client, partner, "catalog:read")
    client.headers["Accept"] = accept

    # when it asks for stock
    response = await client.post(STOCK)

    # then
    error = assert_forbidden(response, ["ProductVariant.stockQuantity"], ["inventory:read"])
    assert error["message"] == (
        "Outside this token's scopes: ProductVariant.stockQuantity: needs the scope inventory:read"
    )


async def test_the_full_scope_reads_stock_and_reviews(
    app_client: httpx.AsyncClient, partner: Partner
) -> None:
    # given a token with every scope the partner holds
    client = await partner_client(app_client, partner)

    # when
    stock = await client.query(STOCK)
    reviews = await client.query(REVIEWS)

    # then the field's permission lets a partner holding inventory:read see stock
    variant = stock["products"]["edges"][0]["node"]["variants"][0]
    assert isinstance(variant["stockQuantity"], int)
    assert isinstance(reviews["products"]["edges"][0]["node"]["reviews"]["totalCount"], int)


async def test_a_narrowed_token_is_refused_what_it_did_not_ask_for(
    app_client: httpx.AsyncClient, partner: Partner, ids: dict[str, str]
) -> None:
    # given a token for catalog and stock, not reviews
    client = await partner_client(app_client, partner, "catalog:read inventory:read")

    # when
    stock = await client.post(STOCK)
    reviews = await client.post(REVIEWS)
    review_by_node = await client.post(REVIEW_BY_NODE, {"id": ids["review"]})
    both = await client.post(
        "{ products(first: 1) { edges { node { reviews { totalCount } "
        "variants { stockQuantity } } } } }"
    )

    # then
    assert stock.status_code == 200, stock.text
    assert_forbidden(reviews, ["Product.reviews"], ["reviews:read"])
    assert_forbidden(review_by_node, ["Review.rating"], ["reviews:read"])
    assert_forbidden(both, ["Product.reviews"], ["reviews:read"])


async def test_fragments_do_not_hide_a_field(
    app_client: httpx.AsyncClient, partner: Partner, ids: dict[str, str]
) -> None:
    # given
    client = await partner_client(app_client, partner, "catalog:read")

    # when
    named = await client.post(STOCK_BY_FRAGMENT)
    inline = await client.post(NODE, {"id": ids["variant"]})
    without = await client.post(NODE_NO_STOCK, {"id": ids["variant"]})

    # then
    assert_forbidden(named, ["ProductVariant.stockQuantity"], ["inventory:read"])
    assert_forbidden(inline, ["ProductVariant.stockQuantity"], ["inventory:read"])
    assert without.status_code == 200, without.text
    assert without.json()["data"]["node"]["sku"]


async def test_skip_and_include_decide_with_the_request_variables(
    app_client: httpx.AsyncClient, partner: Partner
) -> None:
    # given
    client = await partner_client(app_client, partner, "catalog:read")

    # when the same documents run with different directive variables (each twice: cached)
    without_stock = [await client.post(STOCK_IF, {"withStock": False}) for _ in range(2)]
    with_stock = [await client.post(STOCK_IF, {"withStock": True}) for _ in range(2)]
    default_kept = await client.post(STOCK_UNLESS_DEFAULT)
    skipped = await client.post(STOCK_UNLESS_DEFAULT, {"noStock": True})
    literal = await client.post(STOCK_LITERALLY_SKIPPED)
    invalid = await client.post(STOCK_IF, {"withStock": "yes"})

    # then
    for response in [*without_stock, skipped, literal]:
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text
    for response in [*with_stock, default_kept]:
        assert_forbidden(response, ["ProductVariant.stockQuantity"], ["inventory:read"])
    # an invalid variable counts the field in: refused before execution could report it
    assert_forbidden(invalid, ["ProductVariant.stockQuantity"], ["inventory:read"])


async def test_fields_for_people_are_closed_to_partner_tokens(
    app_client: httpx.AsyncClient, partner: Partner
) -> None:
    # given a token with every scope
    client = await partner_client(app_client, partner)

    # when it tries a customer's mutation and the viewer field
    review = await client.post(
        CREATE_REVIEW,
        {"input": {"productId": "UHJvZHVjdDox", "rating": 5, "title": "x", "body": ""}},
    )
    me = await client.post("{ me { id } products(first: 1) { totalCount } }")

    # then
    error = assert_forbidden(review, ["Mutation.createReview"], [])
    assert error["message"] == (
        "Outside this token's scopes: Mutation.createReview: not open to partner tokens"
    )
    assert_forbidden(me, ["Query.me"], [])


async def test_carts_are_closed_to_partner_tokens(
    app_client: httpx.AsyncClient, partner: Partner, ids: dict[str, str]
) -> None:
    # given a token with every scope
    client = await partner_client(app_client, partner)

    # when it reads a cart, changes one, or reaches a user's cart through `node`
    read = await client.post('{ cart(token: "x") { id } }')
    add = await client.post(
        "mutation ($v: ID!) { addToCart(input: {variantId: $v, quantity: 1}) { cart { id } } }",
        {"v": ids["variant"]},
    )
    nested = await client.post('{ node(id: "VXNlcjox") { ... on User { cart { id } } } }')

    # then each is refused before it runs
    assert_forbidden(read, ["Query.cart"], [])
    assert_forbidden(add, ["Mutation.addToCart"], [])
    assert_forbidden(nested, ["User.cart"], [])


async def test_introspection_needs_no_scope(
    app_client: httpx.AsyncClient, partner: Partner
) -> None:
    # given
    client = await partner_client(app_client, partner, "catalog:read")

    # when
    data = await client.query(INTROSPECTION)

    # then
    assert data == {"__typename": "Query", "__schema": {"queryType": {"name": "Query"}}}


async def test_users_and_anonymous_callers_are_unaffected(
    anonymous: GraphQLClient, customer: GraphQLClient, staff: GraphQLClient
) -> None:
    # when
    anonymous_reviews = await anonymous.query(REVIEWS)
    customer_reviews = await customer.query(REVIEWS)
    staff_stock = await staff.query(STOCK)
    customer_stock = await customer.post(STOCK)

    # then scopes play no part: roles and permission classes decide
    assert anonymous_reviews == customer_reviews
    variant = staff_stock["products"]["edges"][0]["node"]["variants"][0]
    assert isinstance(variant["stockQuantity"], int)
    assert customer_stock.status_code == 200
    assert customer_stock.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.fixture
async def own_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """An app of the test's own, to look at its document cache."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client, app.state.executor


async def test_the_check_is_computed_once_per_document_and_only_for_partners(
    own_app: tuple[httpx.AsyncClient, Any], partner: Partner
) -> None:
    # given
    http, executor = own_app
    anonymous = GraphQLClient(http)
    client = await partner_client(http, partner, "catalog:read")

    # when an anonymous caller runs a document
    await anonymous.query(CATALOG)
    prepared = executor.prepare(CATALOG)

    # then nothing was walked for scopes
    assert prepared.requirements == {}

    # when a partner runs it twice
    await client.query(CATALOG)
    first = executor.required(prepared, SCOPE_KEY, operation_name=None, variables=None)
    await client.query(CATALOG)

    # then the answer is kept with the document and reused
    assert executor.required(prepared, SCOPE_KEY, operation_name=None, variables=None) is first
    assert first == {Scope.CATALOG_READ: ("Query.products",)}
