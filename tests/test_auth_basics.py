"""Bearer tokens: a good one names the viewer, a bad one is refused, never anonymous."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import delete, insert

from app.db import Database
from app.models import Partner
from app.platform.tokens import TokenService
from app.services.auth import Authenticator
from app.settings import Settings
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


async def test_a_partner_token_keeps_only_the_scopes_it_was_issued_with(
    settings: Settings,
) -> None:
    # given a partner holding two scopes, and a token issued for one of them
    db = Database.from_settings(settings)
    try:
        async with db.engine.begin() as connection:
            partner_id = (
                await connection.execute(
                    insert(Partner).returning(Partner.id),
                    [
                        {
                            "name": f"narrow-{uuid.uuid4().hex[:8]}",
                            "client_id": uuid.uuid4().hex,
                            "secret_hash": "unused",
                            "scopes": ["catalog:read", "orders:read"],
                        }
                    ],
                )
            ).scalar_one()
        tokens = TokenService(settings)
        token, _ = tokens.issue_partner_token(
            partner_id=partner_id, scopes=["catalog:read"], rate_tier="standard"
        )

        # when
        viewer = await Authenticator(db, tokens).viewer_for(f"Bearer {token}")

        # then
        assert viewer.partner_id == partner_id
        assert viewer.scopes == frozenset({"catalog:read"})
    finally:
        async with db.engine.begin() as connection:
            await connection.execute(delete(Partner).where(Partner.name.like("narrow-%")))
        await db.dispose()
