"""Query counts: a nested catalog query runs one SQL statement per relation level, whatever its size.

Counts come from the `sql_statements` fixture (the ASGI transport runs the app in the
test's task, so the counter sees the request's statements) and must agree with what
the server reports in `extensions.debug.sqlStatements`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.db import StatementCounter
from app.main import create_app
from tests.conftest import Backend, GraphQLClient

# products, categories, parent categories, variants, images, review pages, review authors;
# one to spare.
MAX_NESTED_PRODUCT_STATEMENTS = 8
# The page sizes the issue names. 50 products of this nesting cost 1,052 points, over the
# default cap of 1,000, so that request goes to an app whose only change is a higher cap.
SMALL_PAGE = 5
LARGE_PAGE = 50

PRODUCT_FIELDS = """
  name
  category { name parent { name } }
  variants { sku price { amount } }
  images { url }
  reviews(first: 3) { edges { node { rating author { displayName } } } }
  ratingSummary { average count }
"""

NESTED_PRODUCTS = f"""
query NestedProducts($first: Int!) {{
  products(first: $first) {{ edges {{ node {{ {PRODUCT_FIELDS} }} }} }}
}}
"""

EVERY_CATEGORY_PRODUCTS = f"""
query EveryCategoryProducts {{
  categories {{
    name
    children {{ name products(first: 3) {{ edges {{ node {{ {PRODUCT_FIELDS} }} }} }} }}
  }}
}}
"""

ONE_CATEGORY_PRODUCTS = f"""
query OneCategoryProducts($slug: String!) {{
  category(slug: $slug) {{
    name
    children {{ name products(first: 3) {{ edges {{ node {{ {PRODUCT_FIELDS} }} }} }} }}
  }}
}}
"""

ROOT_NAMES = "{ categories { name } }"


async def _run_counted(
    client: GraphQLClient,
    counter: StatementCounter,
    document: str,
    variables: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """Run a document that must succeed; its data and the SQL statements it ran."""
    before = counter.count
    response = await client.post(document, variables)
    ran = counter.count - before
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    reported = body["extensions"]["debug"]["sqlStatements"]
    assert reported == ran, f"server reports {reported} statements, the test counted {ran}"
    return body["data"], ran


def _products_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in data["products"]["edges"]]


def _category_products(categories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        edge["node"]
        for category in categories
        for child in category["children"]
        for edge in child["products"]["edges"]
    ]


def _assert_fully_nested(products: list[dict[str, Any]]) -> None:
    """Every relation level is really in the answer, so every loader really ran."""
    assert all(product["category"]["parent"] is not None for product in products)
    assert all(product["variants"] and product["images"] for product in products)
    authors = [
        edge["node"]["author"]["displayName"]
        for product in products
        for edge in product["reviews"]["edges"]
    ]
    assert authors, "no reviews in the page: the author level went untested"


async def test_request_statements_are_seen_by_the_sql_statements_fixture(
    anonymous: GraphQLClient, sql_statements: StatementCounter
) -> None:
    # when
    await anonymous.query(ROOT_NAMES)

    # then the statement the request ran shows up in the test's counter
    assert sql_statements.count >= 1
    assert any("categories" in statement for statement in sql_statements.statements)


@pytest.fixture(scope="session")
async def unlimited_cost(backend: Backend) -> AsyncIterator[GraphQLClient]:
    """An anonymous caller of an app that lets any query cost through (counts, not limits)."""
    app = create_app(backend.settings(max_query_cost=1_000_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield GraphQLClient(http)


async def test_nested_product_page_costs_the_same_for_5_and_50_products(
    unlimited_cost: GraphQLClient, sql_statements: StatementCounter
) -> None:
    # when
    small, small_count = await _run_counted(
        unlimited_cost, sql_statements, NESTED_PRODUCTS, {"first": SMALL_PAGE}
    )
    large, large_count = await _run_counted(
        unlimited_cost, sql_statements, NESTED_PRODUCTS, {"first": LARGE_PAGE}
    )

    # then
    assert len(_products_of(small)) == SMALL_PAGE
    assert len(_products_of(large)) == LARGE_PAGE
    _assert_fully_nested(_products_of(small))
    _assert_fully_nested(_products_of(large))
    assert small_count == large_count, sql_statements.statements
    assert large_count <= MAX_NESTED_PRODUCT_STATEMENTS, sql_statements.statements


async def test_category_products_cost_does_not_grow_with_the_number_of_categories(
    anonymous: GraphQLClient, sql_statements: StatementCounter
) -> None:
    # when: every root's children with their products, then one root's
    every, every_count = await _run_counted(anonymous, sql_statements, EVERY_CATEGORY_PRODUCTS)
    one, one_count = await _run_counted(
        anonymous, sql_statements, ONE_CATEGORY_PRODUCTS, {"slug": "electronics"}
    )

    # then
    every_products = _category_products(every["categories"])
    one_products = _category_products([one["category"]])
    assert len(every["categories"]) == 6
    assert len(every_products) > 2 * len(one_products) > 0
    _assert_fully_nested(every_products)
    _assert_fully_nested(one_products)
    assert every_count == one_count, sql_statements.statements
    # the two category levels, then one statement per level of the nested product query
    assert every_count <= MAX_NESTED_PRODUCT_STATEMENTS + 2, sql_statements.statements
