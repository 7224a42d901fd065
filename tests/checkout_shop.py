"""A private shop for checkout and order tests, and the helpers those tests share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.platform.global_ids import to_global_id
from tests.conftest import GraphQLClient, signed_in_client
from tests.private_shop import Shop

ERRORS = "userErrors { field message code }"
ORDER_FIELDS = """
  id number status
  lines { sku productName variantName quantity unitPrice { amount currency } lineTotal { amount }
          variant { id } }
  subtotal { amount currency } shipping { amount } total { amount currency }
  shippingAddress { fullName line1 line2 city postalCode country }
  payments { id gateway status amount { amount currency } }
  customer { id }
  createdAt
"""
CHECKOUT = f"""
mutation ($input: CheckoutInput!) {{ checkout(input: $input) {{ order {{ {ORDER_FIELDS} }} {ERRORS} }} }}
"""
ORDER = f"""
query ($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}
"""
ADD = f"""
mutation ($input: AddToCartInput!) {{ addToCart(input: $input) {{ cart {{ id token }} {ERRORS} }} }}
"""
SET_STOCK = f"""
mutation ($id: ID!, $quantity: Int!) {{ setStock(variantId: $id, quantity: $quantity) {{ {ERRORS} }} }}
"""
ADDRESS = {
    "fullName": "Ada Quellwasser",
    "line1": "Lindenstraße 17",
    "line2": "Hinterhaus 3",
    "city": "Quedlinburg",
    "postalCode": "06484",
    "country": "DE",
}


async def new_customer(shop: Shop) -> GraphQLClient:
    """A customer of their own (no cart, no orders yet)."""
    email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
    client = await signed_in_client(shop.http, shop.settings, role="CUSTOMER", email=email)
    client.email = email  # type: ignore[attr-defined]
    return client


async def variant_with_stock(shop: Shop, stock: int, *, offset: int = 0) -> dict[str, Any]:
    """A variant of a published product (the `offset`-th), its stock set to `stock`."""
    rows = await shop.rows(
        "SELECT v.id, v.sku, v.price_minor FROM product_variants v"
        " JOIN products p ON p.id = v.product_id WHERE p.is_published ORDER BY v.id"
    )
    row = rows[offset]
    variant_id = to_global_id("ProductVariant", row.id)
    data = await shop.staff.query(SET_STOCK, {"id": variant_id, "quantity": stock})
    assert data["setStock"]["userErrors"] == []
    return {"id": variant_id, "pk": row.id, "sku": row.sku, "price": Decimal(row.price_minor) / 100}


async def fill_cart(
    caller: GraphQLClient, variant_id: str, quantity: int = 1, token: str | None = None
) -> str:
    """Put units of a variant in the caller's cart; the cart's token."""
    data = await caller.query(
        ADD, {"input": {"cartToken": token, "variantId": variant_id, "quantity": quantity}}
    )
    assert data["addToCart"]["userErrors"] == [], data
    return data["addToCart"]["cart"]["token"]  # type: ignore[no-any-return]


async def checkout(
    caller: GraphQLClient,
    *,
    key: str | None = None,
    payment_token: str = "tok_success",
    cart_token: str | None = None,
    address: Mapping[str, Any] | None = ADDRESS,
    address_id: str | None = None,
) -> dict[str, Any]:
    """The checkout payload."""
    data = await caller.query(
        CHECKOUT,
        {
            "input": {
                "cartToken": cart_token,
                "shippingAddress": None if address is None else dict(address),
                "addressId": address_id,
                "paymentToken": payment_token,
                "idempotencyKey": key or uuid.uuid4().hex,
            }
        },
    )
    return data["checkout"]  # type: ignore[no-any-return]


# Settings of a shop whose server runs its jobs (the capture of each checkout) quickly.
RUNS_JOBS: dict[str, Any] = {
    "jobs_in_process": True,
    "outbox_relay_interval_seconds": 0.2,
    "job_backoff_seconds": 0.3,
}


def runs_jobs(label: str) -> dict[str, Any]:
    """RUNS_JOBS, with a job stream of the shop's own (Redis outlives the shop)."""
    return {**RUNS_JOBS, "jobs_stream": f"shopgraph-test:jobs:{label}:{uuid.uuid4().hex}"}


async def paid(caller: GraphQLClient, order: Mapping[str, Any], *, within: float = 20.0) -> Any:
    """The order as `caller` reads it once its capture job made it PAID."""
    for _ in range(int(within / 0.05)):
        now = (await caller.query(ORDER, {"id": order["id"]}))["order"]
        if now["status"] != "PENDING_PAYMENT":
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order['number']} still PENDING_PAYMENT after {within} s")


async def stock_of(shop: Shop, variant: Mapping[str, Any]) -> int:
    """A variant's stock now."""
    return int(
        await shop.value("SELECT stock FROM product_variants WHERE id = :id", id=variant["pk"])
    )
