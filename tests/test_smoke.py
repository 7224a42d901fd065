"""The catalog answers a nested query."""

from __future__ import annotations

from tests.conftest import GraphQLClient

PRODUCTS = "{ products(first: 2) { totalCount edges { node { name variants { sku } } } } }"


async def test_products_are_listed(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(PRODUCTS)
    assert data["products"]["totalCount"] > 0
    assert len(data["products"]["edges"]) == 2
