"""Bad input gets a clear GraphQL error with a code, never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.platform.global_ids import to_global_id
from tests.conftest import GraphQLClient

PRODUCTS_PAGE = """
query Page($first: Int, $last: Int, $after: String, $before: String, $sortBy: ProductSort) {
  products(first: $first, last: $last, after: $after, before: $before, sortBy: $sortBy) {
    edges { cursor node { id name } }
  }
}
"""
FILTERED_PRODUCTS = """
query Filtered($filter: ProductFilter) {
  products(first: 5, filter: $filter) { totalCount }
}
"""
PRICE_MIN_LITERAL = '{ products(first: 5, filter: {priceMin: "1.234"}) { totalCount } }'
NODE = "query Node($id: ID!) { node(id: $id) { id } }"
NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id } }"
PRODUCT_BY = """
query Product($id: ID, $slug: String) { product(id: $id, slug: $slug) { id name } }
"""
CATEGORY_IDS = "{ categories { id } }"
UNKNOWN_FIELD = "{ products(first: 1) { edges { node { price } } } }"
WRONG_LITERAL_TYPE = '{ products(first: "ten") { totalCount } }'


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _forged_cursor(field: str, kind: str, value: Any, row_id: Any) -> str:
    """A cursor in the server's own format, but with values the server never wrote."""
    return _b64(json.dumps([f"products:{field}:asc", kind, value, row_id]))


async def _the_error(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Send a document that must fail with exactly one client error; return it."""
    response = await client.post(query, variables)
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert len(body.get("errors", [])) == 1, body
    [error] = body["errors"]
    assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error
    assert error["message"] != "Internal server error"
    return error  # type: ignore[no-any-return]


async def _first_page_cursor(client: GraphQLClient, sort_by: dict[str, str] | None) -> str:
    data = await client.query(PRODUCTS_PAGE, {"first": 2, "sortBy": sort_by})
    return data["products"]["edges"][-1]["cursor"]  # type: ignore[no-any-return]


# --- page sizes and cursors ----------------------------------------------------------------


@pytest.mark.parametrize("argument", ["first", "last"])
async def test_a_page_over_the_cap_is_refused(anonymous: GraphQLClient, argument: str) -> None:
    error = await _the_error(anonymous, PRODUCTS_PAGE, {argument: 101})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert f"`{argument}`" in error["message"]
    assert "100" in error["message"]


@pytest.mark.parametrize("argument", ["first", "last"])
async def test_a_page_at_the_cap_is_served(anonymous: GraphQLClient, argument: str) -> None:
    data = await anonymous.query(PRODUCTS_PAGE, {argument: 100})

    assert len(data["products"]["edges"]) > 0


async def test_a_negative_page_size_is_refused(anonymous: GraphQLClient) -> None:
    error = await _the_error(anonymous, PRODUCTS_PAGE, {"first": -1})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "negative" in error["message"]


async def test_first_and_last_together_are_refused(anonymous: GraphQLClient) -> None:
    error = await _the_error(anonymous, PRODUCTS_PAGE, {"first": 2, "last": 2})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`first`" in error["message"]
    assert "`last`" in error["message"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor at all!",
        _b64("garbage"),
        _b64('["name", "s", "Anvil"]'),
        _b64('["name", "s", "Anvil", "7"]'),
        _b64('["name", "t", "not a date", 7]'),
        "",
    ],
    ids=["text", "base64-garbage", "short-list", "string-id", "bad-time", "empty"],
)
@pytest.mark.parametrize("direction", ["after", "before"])
async def test_a_malformed_cursor_is_refused(
    anonymous: GraphQLClient, cursor: str, direction: str
) -> None:
    error = await _the_error(anonymous, PRODUCTS_PAGE, {"first": 2, direction: cursor})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in error["message"].lower()


@pytest.mark.parametrize(
    ("field", "cursor"),
    [
        ("NAME", _forged_cursor("NAME", "s", "A", 2**63)),
        ("NAME", _forged_cursor("NAME", "s", "A", 2**31)),
        ("NAME", _forged_cursor("NAME", "s", "A", 0)),
        ("NAME", _forged_cursor("NAME", "s", "A", True)),
        ("CREATED_AT", _forged_cursor("CREATED_AT", "t", "2020-01-01T00:00:00", 1)),
        ("CREATED_AT", _forged_cursor("CREATED_AT", "t", "yesterday", 1)),
    ],
    ids=["id-over-int64", "id-over-int32", "id-zero", "id-bool", "naive-time", "bad-time"],
)
async def test_a_forged_cursor_is_refused(
    anonymous: GraphQLClient, field: str, cursor: str
) -> None:
    variables = {"first": 2, "after": cursor, "sortBy": {"field": field, "direction": "ASC"}}

    error = await _the_error(anonymous, PRODUCTS_PAGE, variables)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Malformed cursor" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("NAME", 12), ("PRICE", "abc"), ("PRICE", 2**40), ("RATING", "abc"), ("CREATED_AT", 5)],
    ids=["name-int", "price-text", "price-over-int32", "rating-text", "time-int"],
)
async def test_a_cursor_whose_value_does_not_fit_its_sort_is_refused(
    anonymous: GraphQLClient, field: str, value: Any
) -> None:
    cursor = _forged_cursor(field, "s", value, 1)
    variables = {"first": 2, "after": cursor, "sortBy": {"field": field, "direction": "ASC"}}

    error = await _the_error(anonymous, PRODUCTS_PAGE, variables)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Malformed cursor" in error["message"]


async def test_a_cursor_of_another_sort_order_is_refused(anonymous: GraphQLClient) -> None:
    by_name = await _first_page_cursor(anonymous, None)

    error = await _the_error(
        anonymous,
        PRODUCTS_PAGE,
        {"first": 2, "after": by_name, "sortBy": {"field": "PRICE", "direction": "ASC"}},
    )

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "another sort order" in error["message"]


async def test_a_cursor_of_the_same_sort_order_is_accepted(anonymous: GraphQLClient) -> None:
    sort_by = {"field": "PRICE", "direction": "DESC"}
    after = await _first_page_cursor(anonymous, sort_by)

    data = await anonymous.query(PRODUCTS_PAGE, {"first": 2, "after": after, "sortBy": sort_by})

    assert len(data["products"]["edges"]) == 2


# --- global ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "node_id",
    [
        _b64("Nope:1"),
        _b64("Product:abc"),
        "abc",
        _b64("Product:0"),
        _b64("Product:-3"),
        _b64("Product:01"),
        _b64(f"Product:{2**31}"),
        _b64(f"Product:{2**63}"),
        "",
    ],
    ids=[
        "unknown-type",
        "non-numeric-pk",
        "plain-text",
        "zero-pk",
        "negative-pk",
        "leading-zero",
        "pk-over-int32",
        "pk-over-int64",
        "empty",
    ],
)
async def test_node_refuses_an_id_that_is_not_ours(anonymous: GraphQLClient, node_id: str) -> None:
    error = await _the_error(anonymous, NODE, {"id": node_id})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Invalid ID" in error["message"]
    assert error["path"] == ["node"]


async def test_product_refuses_a_category_id(anonymous: GraphQLClient) -> None:
    categories = await anonymous.query(CATEGORY_IDS)
    category_id = categories["categories"][0]["id"]

    error = await _the_error(anonymous, PRODUCT_BY, {"id": category_id})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "expected a Product ID, got a Category ID" in error["message"]


@pytest.mark.parametrize(
    "arguments",
    [{"id": to_global_id("Product", 1), "slug": "anything"}, {}],
    ids=["both", "neither"],
)
async def test_product_needs_exactly_one_of_id_and_slug(
    anonymous: GraphQLClient, arguments: dict[str, str]
) -> None:
    error = await _the_error(anonymous, PRODUCT_BY, arguments)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "exactly one of `id` or `slug`" in error["message"]


async def test_a_missing_product_is_null_without_error(anonymous: GraphQLClient) -> None:
    missing = to_global_id("Product", 2**31 - 1)

    response = await anonymous.post(PRODUCT_BY, {"id": missing})

    assert response.status_code == 200
    assert response.json()["data"] == {"product": None}
    assert "errors" not in response.json()


async def test_a_missing_node_is_null_without_error(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(NODE, {"id": to_global_id("Product", 2**31 - 1)})

    assert data == {"node": None}


async def test_nodes_refuses_more_than_100_ids(anonymous: GraphQLClient) -> None:
    ids = [to_global_id("Product", pk) for pk in range(1, 102)]

    error = await _the_error(anonymous, NODES, {"ids": ids})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "100" in error["message"]


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"priceMin": "1.234"}, "decimal places"),
        ({"priceMin": "-1"}, "non-negative"),
        ({"priceMax": "-0.01"}, "non-negative"),
        ({"ratingMin": 7}, "between 0 and 5"),
        ({"ratingMin": -1}, "between 0 and 5"),
        ({"search": "x" * 201}, "at most 200"),
        ({"categoryId": to_global_id("Product", 1)}, "expected a Category ID"),
    ],
    ids=[
        "price-3-decimals",
        "price-negative",
        "price-max-negative",
        "rating-7",
        "rating-negative",
        "search-201",
        "category-id-of-product",
    ],
)
async def test_a_bad_filter_is_refused(
    anonymous: GraphQLClient, filter_: dict[str, Any], expected: str
) -> None:
    error = await _the_error(anonymous, FILTERED_PRODUCTS, {"filter": filter_})

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert expected in error["message"]


async def test_a_search_of_200_characters_is_served(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(FILTERED_PRODUCTS, {"filter": {"search": "x" * 200}})

    assert data["products"]["totalCount"] == 0


async def test_a_price_literal_with_3_decimals_is_refused(anonymous: GraphQLClient) -> None:
    error = await _the_error(anonymous, PRICE_MIN_LITERAL)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "decimal places" in error["message"]


# --- documents that do not fit the schema --------------------------------------------------------


async def test_an_unknown_field_fails_validation(anonymous: GraphQLClient) -> None:
    error = await _the_error(anonymous, UNKNOWN_FIELD)

    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "price" in error["message"]


async def test_a_literal_of_the_wrong_type_fails_validation(anonymous: GraphQLClient) -> None:
    error = await _the_error(anonymous, WRONG_LITERAL_TYPE)

    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize(
    "variables",
    [{"first": "ten"}, {"first": 1.5}, {"first": 2**40}, {"sortBy": {"field": "COLOUR"}}],
    ids=["string", "float", "over-32-bits", "unknown-enum"],
)
async def test_a_variable_of_the_wrong_type_is_bad_user_input(
    anonymous: GraphQLClient, variables: dict[str, Any]
) -> None:
    error = await _the_error(anonymous, PRODUCTS_PAGE, variables)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("Variable ")


async def test_an_unused_variable_fails_validation(anonymous: GraphQLClient) -> None:
    error = await _the_error(anonymous, "query Unused($x: Int) { __typename }", {"x": 1})

    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
