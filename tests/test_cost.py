"""Query cost: the rules on a small schema, then requested and actual costs over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import build_schema, parse

from app.engine.cost import (
    MAX_EXPANDED_FIELDS,
    PLAIN_LIST_SIZE,
    CostModel,
    CostPlan,
    QueryTooComplex,
    plan_operations,
)
from tests.conftest import GraphQLClient

SDL = """
interface Node { id: ID! }
type Money { amount: String! currency: String! }
type Variant implements Node { id: ID! sku: String! price: Money! }
type Review implements Node { id: ID! title: String! }
type ReviewEdge { cursor: String! node: Review! }
type ReviewConnection { edges: [ReviewEdge!]! pageInfo: PageInfo! totalCount: Int! }
type PageInfo { hasNextPage: Boolean! }
type Product implements Node {
  id: ID!
  name: String!
  tags: [String!]!
  totalCount: Int!
  variants: [Variant!]!
  reviews(first: Int, last: Int): ReviewConnection!
}
type ProductEdge { cursor: String! node: Product! }
type ProductConnection { edges: [ProductEdge!]! pageInfo: PageInfo! totalCount: Int! }
type Category { name: String! parent: Category children: [Category!]! sibling: Category }
type Query {
  category: Category
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  product(id: ID!): Product
  products(first: Int, last: Int): ProductConnection!
}
type Mutation { rename(id: ID!, name: String!): Product forget(id: ID!): Boolean! }
"""
SCHEMA = build_schema(SDL)
MODEL = CostModel(default_page_size=20, max_page_size=100)

# What each document is expected to cost before it runs.
REQUESTED: list[tuple[str, str, dict[str, Any] | None, int]] = [
    (
        "scalars and __typename are free",
        '{ __typename product(id: "1") { id name tags } }',
        None,
        1,
    ),
    ("an object costs 1", '{ product(id: "1") { name } }', None, 1),
    (
        "a connection costs 2 + page x item",
        "{ products(first: 10) { edges { node { name } } } }",
        None,
        12,
    ),
    (
        "pageInfo and totalCount count once, totalCount as a default page",
        "{ products(first: 10) { totalCount pageInfo { hasNextPage } } }",
        None,
        2 + 20 + 1,
    ),
    (
        "totalCount costs a default page whatever the page size",
        "{ products(first: 0) { totalCount } }",
        None,
        2 + 20,
    ),
    (
        "a scalar called totalCount outside a connection is free",
        '{ product(id: "1") { totalCount } }',
        None,
        1,
    ),
    ("the default page size", "{ products { edges { node { id } } } }", None, 22),
    (
        "the larger of first and last",
        "{ products(first: 3, last: 5) { edges { node { id } } } }",
        None,
        7,
    ),
    (
        "a page size from a variable",
        "query ($n: Int) { products(first: $n) { edges { node { id } } } }",
        {"n": 4},
        6,
    ),
    (
        "a variable's default",
        "query ($n: Int = 7) { products(first: $n) { edges { node { id } } } }",
        {},
        9,
    ),
    (
        "a page size over the cap counts as the cap",
        "{ products(first: 500) { edges { node { id } } } }",
        None,
        102,
    ),
    (
        "nested connections multiply",
        "{ products(first: 10) { edges { node { reviews(first: 5) { edges { node { title } } } } } } }",
        None,
        2 + 10 * (1 + 2 + 5),
    ),
    (
        "a plain list costs 1, its items' objects an assumed size",
        '{ product(id: "1") { variants { sku price { amount } } } }',
        None,
        1 + 1 + PLAIN_LIST_SIZE * 1,
    ),
    ("a list argument gives the size", '{ nodes(ids: ["1", "2", "3"]) { id } }', None, 3),
    (
        "a list variable gives the size",
        "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": ["1", "2"]},
        2,
    ),
    (
        "a mutation root field costs 10",
        'mutation { rename(id: "1", name: "x") { name } forget(id: "2") }',
        None,
        20,
    ),
    (
        "fragments on types: the dearest",
        '{ node(id: "1") { id ... on Product { variants { price { amount } } } '
        "... on Review { title } } }",
        None,
        1 + (1 + PLAIN_LIST_SIZE),
    ),
    (
        "one response key is one field",
        "{ products(first: 10) { edges { node { id } } } ...Again } fragment Again on Query { products(first: 10) { edges { node { name } } } }",
        None,
        12,
    ),
    (
        "aliases are separate fields",
        "{ a: products(first: 10) { totalCount } b: products(first: 10) { totalCount } }",
        None,
        2 * (2 + 20),
    ),
    ("a literal @skip is honoured", '{ product(id: "1") @skip(if: true) { name } }', None, 0),
    (
        "a variable @include is assumed on",
        'query ($on: Boolean!) { product(id: "1") @include(if: $on) { name } }',
        {"on": False},
        1,
    ),
    ("introspection is flat", "{ __schema { types { fields { type { name } } } } }", None, 1),
]


def _plan(query: str) -> CostPlan:
    return plan_operations(SCHEMA, parse(query), MODEL)[None]


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [case[1:] for case in REQUESTED],
    ids=[case[0] for case in REQUESTED],
)
def test_requested_cost(query: str, variables: dict[str, Any] | None, cost: int) -> None:
    assert _plan(query).requested(variables) == cost


def test_a_plan_without_variable_sizes_is_costed_once() -> None:
    assert _plan("{ products(first: 10) { totalCount } }").static_cost == 2 + 20
    assert _plan("query ($n: Int) { products(first: $n) { totalCount } }").static_cost is None


def test_actual_cost_counts_the_items_returned() -> None:
    plan = _plan(
        "{ products(first: 10) { edges { node { variants { sku } reviews(first: 5) "
        "{ edges { node { title } } } } } } }"
    )
    product = {"variants": [{"sku": "a"}, {"sku": "b"}], "reviews": {"edges": [{"node": {}}]}}
    data = {"products": {"edges": [{"node": product}, {"node": {"variants": [], "reviews": None}}]}}

    # 2 + [1 + variants 1 + (2 + 1 review)] + [1 + variants 1 + 2 for a null connection]
    assert plan.actual(data) == 2 + (1 + 1 + 3) + (1 + 1 + 2)
    assert plan.actual(None) == 0


def test_actual_cost_charges_a_count_that_ran_and_not_one_under_a_null_connection() -> None:
    plan = _plan(
        '{ products(first: 0) { totalCount } product(id: "1") { reviews { totalCount } } }'
    )

    assert plan.actual({"products": {"totalCount": 7}, "product": {"reviews": None}}) == (
        2 + 20
    ) + (1 + 2)


def test_actual_cost_of_a_null_object_is_its_own_cost() -> None:
    plan = _plan('{ product(id: "1") { variants { sku } } }')

    assert plan.actual({"product": None}) == 1


def test_a_fragment_bomb_is_refused_before_it_expands() -> None:
    # each level selects the next one under three fields: 3^12 fields once inlined
    levels = 12
    document = "\n".join(
        ["{ category { ...C0 } }"]
        + [
            f"fragment C{level} on Category {{ parent {{ ...C{level + 1} }} "
            f"children {{ ...C{level + 1} }} sibling {{ ...C{level + 1} }} }}"
            for level in range(levels)
        ]
        + [f"fragment C{levels} on Category {{ name }}"]
    )

    with pytest.raises(QueryTooComplex, match=str(MAX_EXPANDED_FIELDS)):
        plan_operations(SCHEMA, parse(document), MODEL)


def test_a_fragment_spread_twice_in_one_selection_is_inlined_once() -> None:
    # as graphql-core's field collection does: the second spread adds nothing
    levels = 30
    document = "\n".join(
        ["{ ...B0 }"]
        + [
            f"fragment B{level} on Query {{ products(first: 1) {{ totalCount }} "
            f"...B{level + 1} ...B{level + 1} }}"
            for level in range(levels)
        ]
        + [f"fragment B{levels} on Query {{ __typename }}"]
    )

    assert plan_operations(SCHEMA, parse(document), MODEL)[None].requested(None) == 2 + 20


# --- over HTTP -----------------------------------------------------------------------------------

PAGE = "{ products(first: 100) { edges { node { name } } } }"
PAGE_BY_VARIABLE = "query ($n: Int) { products(first: $n) { edges { node { name } } } }"
OVER_COST = """
{ products(first: 100) { edges { node { reviews(first: 100) { edges { node { title } } } } } } }
"""
REVIEWS = """
{ products(first: 10) { edges { node { reviews(first: 3) { edges { node { rating } } } } } } }
"""


async def test_every_executed_response_carries_its_cost(anonymous: GraphQLClient) -> None:
    response = await anonymous.post(PAGE)

    body = response.json()
    edges = body["data"]["products"]["edges"]
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 102
    assert cost["actualQueryCost"] == 2 + len(edges)
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


async def test_the_requested_cost_reads_page_sizes_from_variables(
    anonymous: GraphQLClient,
) -> None:
    small = (await anonymous.post(PAGE_BY_VARIABLE, {"n": 3})).json()
    large = (await anonymous.post(PAGE_BY_VARIABLE, {"n": 30})).json()

    assert small["extensions"]["cost"]["requestedQueryCost"] == 5
    assert large["extensions"]["cost"]["requestedQueryCost"] == 32


async def test_nested_connections_count_their_actual_edges(anonymous: GraphQLClient) -> None:
    body = (await anonymous.post(REVIEWS)).json()

    products = [edge["node"] for edge in body["data"]["products"]["edges"]]
    reviews = sum(len(product["reviews"]["edges"]) for product in products)
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 10 * (1 + 2 + 3)
    assert cost["actualQueryCost"] == 2 + len(products) * (1 + 2) + reviews


async def test_a_counted_total_costs_a_default_page_and_a_stored_one_nothing(
    anonymous: GraphQLClient,
) -> None:
    # products.totalCount runs a COUNT; reviews.totalCount reads the product's rating_count.
    counted = (await anonymous.post("{ products(first: 0) { totalCount } }")).json()
    stored = (
        await anonymous.post("{ products(first: 2) { edges { node { reviews { totalCount } } } } }")
    ).json()

    assert counted["extensions"]["cost"]["requestedQueryCost"] == 2 + 20
    assert counted["extensions"]["cost"]["actualQueryCost"] == 2 + 20
    assert stored["extensions"]["cost"]["requestedQueryCost"] == 2 + 2 * (1 + 2)


async def test_a_query_over_the_maximum_cost_is_refused_before_execution(
    anonymous: GraphQLClient,
) -> None:
    response = await anonymous.post(OVER_COST)

    body = response.json()
    assert response.status_code == 400
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "10302" in error["message"]
    assert "1000" in error["message"]
    cost = body["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (10302, 0)
    # only the admission charge (paid before the parse) was taken, not the query's cost
    capacity = cost["throttleStatus"]["maximumAvailable"]
    assert cost["throttleStatus"]["currentlyAvailable"] == capacity - cost["admissionCost"]
    assert "debug" not in body["extensions"], "nothing may run"


async def test_a_page_over_the_cap_is_still_bad_user_input(anonymous: GraphQLClient) -> None:
    response = await anonymous.post(PAGE_BY_VARIABLE, {"n": 101})

    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
