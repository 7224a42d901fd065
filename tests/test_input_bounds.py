"""Input bounds (issue 9, item 8): decimals, cursor values and global IDs out of range are a
clear BAD_USER_INPUT (or a userError on mutations), never a masked 500 nor a silent change."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import GraphQLClient

FILTERED = "query ($filter: ProductFilter) { products(first: 5, filter: $filter) { totalCount } }"
PAGE = """
query ($after: String, $before: String, $sortBy: ProductSort) {
  products(first: 2, after: $after, before: $before, sortBy: $sortBy) { edges { node { id } } }
}
"""
REVIEWS = """
query ($slug: String!, $after: String) {
  product(slug: $slug) { reviews(first: 2, after: $after) { edges { node { id } } } }
}
"""
NODE = "query ($id: ID!) { node(id: $id) { id } }"
CREATE_VARIANT = """
mutation ($productId: ID!, $input: VariantInput!) {
  createVariant(productId: $productId, input: $input) {
    variant { id } userErrors { field message code }
  }
}
"""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor(sort: str, kind: str, value: Any, row_id: int = 1) -> str:
    """A cursor in the server's own format holding a value the server never wrote."""
    return _b64(json.dumps([sort, kind, value, row_id]))


async def _the_error(
    client: GraphQLClient, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """Send a document that must fail with exactly one client error; return it."""
    response = await client.post(query, variables)
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert len(body.get("errors", [])) == 1, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return error  # type: ignore[no-any-return]


# --- decimals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1E+999999", "too large"),  # was decimal.Overflow, a masked 500
        ("1E-999999999", "more than 2 decimal places"),  # was silently 0
        ("9E+99999999999", "too large"),
        ("21474836.48", "too large"),  # one minor unit over the 32-bit column
        ("0.001", "more than 2 decimal places"),
        ("1." + "0" * 80 + "1", "more than 2 decimal places"),
        ("NaN", "not a valid amount"),
        ("-Infinity", "not a valid amount"),
    ],
    ids=[
        "overflow",
        "underflow",
        "huge-exponent",
        "over-int32",
        "3-decimals",
        "long-tail",
        "nan",
        "minus-infinity",
    ],
)
@pytest.mark.parametrize("bound", ["priceMin", "priceMax"])
async def test_an_out_of_range_price_filter_is_refused(
    anonymous: GraphQLClient, bound: str, amount: str, expected: str
) -> None:
    error = await _the_error(anonymous, FILTERED, {"filter": {bound: amount}})

    assert expected in error["message"], error
    assert f"filter.{bound}" in error["message"], error


@pytest.mark.parametrize(
    ("amount", "count"),
    [("21474836.47", 0), ("0E-999999999", None), ("12.500", None)],
    ids=["largest", "zero-with-a-tiny-exponent", "trailing-zeros"],
)
async def test_a_price_filter_in_range_is_served(
    anonymous: GraphQLClient, amount: str, count: int | None
) -> None:
    data = await anonymous.query(FILTERED, {"filter": {"priceMin": amount}})

    if count is not None:
        assert data["products"]["totalCount"] == count


async def test_zero_with_a_tiny_exponent_is_zero(anonymous: GraphQLClient) -> None:
    everything = await anonymous.query(FILTERED, {"filter": {"priceMin": "0"}})
    tiny_zero = await anonymous.query(FILTERED, {"filter": {"priceMin": "0E-999999999"}})

    assert tiny_zero == everything


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("1E+999999", "too large"),
        ("1E-999999999", "decimal places"),
        ("99999999999", "too large"),
    ],
    ids=["overflow", "underflow", "over-int32"],
)
async def test_an_out_of_range_variant_price_is_a_user_error(
    staff: GraphQLClient, anonymous: GraphQLClient, price: str, expected: str
) -> None:
    first = await anonymous.query("{ products(first: 1) { edges { node { id } } } }")
    product_id = first["products"]["edges"][0]["node"]["id"]
    values = {"sku": "BOUNDS-1", "name": "Bounds", "price": price}

    data = await staff.query(CREATE_VARIANT, {"productId": product_id, "input": values})

    payload = data["createVariant"]
    assert payload["variant"] is None
    [error] = payload["userErrors"]
    assert error["field"] == ["input", "price"], error
    assert expected in error["message"], error


# --- cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC: was an OverflowError
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    ],
    ids=["after-9999", "before-year-1"],
)
@pytest.mark.parametrize("direction", ["after", "before"])
async def test_a_cursor_time_out_of_range_is_refused(
    anonymous: GraphQLClient, value: str, direction: str
) -> None:
    variables = {
        direction: _cursor("products:CREATED_AT:asc", "t", value),
        "sortBy": {"field": "CREATED_AT", "direction": "ASC"},
    }

    error = await _the_error(anonymous, PAGE, variables)

    assert "Malformed cursor" in error["message"]


async def test_a_review_cursor_time_out_of_range_is_refused(anonymous: GraphQLClient) -> None:
    first = await anonymous.query("{ products(first: 1) { edges { node { slug } } } }")
    slug = first["products"]["edges"][0]["node"]["slug"]
    after = _cursor("reviews:newest", "t", "9999-12-31T23:59:59-14:00")

    error = await _the_error(anonymous, REVIEWS, {"slug": slug, "after": after})

    assert "Malformed cursor" in error["message"]


async def test_a_cursor_time_at_the_edge_of_the_range_is_served(anonymous: GraphQLClient) -> None:
    variables = {
        "after": _cursor("products:CREATED_AT:asc", "t", "9999-12-31T23:59:59+00:00"),
        "sortBy": {"field": "CREATED_AT", "direction": "ASC"},
    }

    data = await anonymous.query(PAGE, variables)

    assert data["products"]["edges"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", 2**31),
        ("price", -(2**31) - 1),
        ("price", 2**63),
        ("name", "A\x00"),
    ],
    ids=["price-over-int32", "price-under-int32", "price-over-int64", "name-nul"],
)
async def test_a_cursor_value_out_of_its_column_range_is_refused(
    anonymous: GraphQLClient, field: str, value: Any
) -> None:
    variables = {
        "after": _cursor(f"products:{field.upper()}:asc", "s", value),
        "sortBy": {"field": field.upper(), "direction": "ASC"},
    }

    error = await _the_error(anonymous, PAGE, variables)

    assert "Malformed cursor" in error["message"]


@pytest.mark.parametrize(
    "value", [2**63 - 1, 1e308, -1e308], ids=["int64-max", "float-max", "float-min"]
)
async def test_a_rating_cursor_at_the_float_range_is_served(
    anonymous: GraphQLClient, value: float
) -> None:
    variables = {
        "after": _cursor("products:RATING:asc", "s", value),
        "sortBy": {"field": "RATING", "direction": "ASC"},
    }

    data = await anonymous.query(PAGE, variables)

    assert isinstance(data["products"]["edges"], list)


async def test_a_rating_cursor_beyond_the_float_range_is_refused(anonymous: GraphQLClient) -> None:
    after = _b64('["products:RATING:asc", "s", 1e400, 1]')  # JSON allows it; a double does not

    error = await _the_error(
        anonymous, PAGE, {"after": after, "sortBy": {"field": "RATING", "direction": "ASC"}}
    )

    assert "Malformed cursor" in error["message"]


# --- global ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pk",
    [str(2**31), str(2**63), "9" * 5000, "-1", "0", "1e3", " 1"],
    ids=["over-int32", "over-int64", "5000-digits", "negative", "zero", "exponent", "space"],
)
async def test_a_global_id_with_an_out_of_range_pk_is_refused(
    anonymous: GraphQLClient, pk: str
) -> None:
    error = await _the_error(anonymous, NODE, {"id": _b64(f"Product:{pk}")})

    assert "Invalid ID" in error["message"]
