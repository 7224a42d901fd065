"""Bearer tokens: a good one names the viewer, a bad one is refused, never anonymous."""

from __future__ import annotations

import httpx

from tests.conftest import GraphQLClient

STOCK = "{ products(first: 1) { edges { node { variants { stockQuantity } } } } }"


async def test_staff_sees_stock_quantities(staff: GraphQLClient) -> None:
    data = await staff.query(STOCK)

    variants = data["products"]["edges"][0]["node"]["variants"]
    assert all(isinstance(variant["stockQuantity"], int) for variant in variants)


async def test_a_customer_is_refused_stock_quantities(customer: GraphQLClient) -> None:
    errors = await customer.errors(STOCK)

    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_garbage_token_is_unauthenticated_not_anonymous(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer nope"}
    )

    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "invalid_token" in response.headers["www-authenticate"]
