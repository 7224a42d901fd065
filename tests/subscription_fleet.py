"""The live server processes the subscription tests run against, and their helpers.

With PostgreSQL and Redis there are two `shopgraph serve` processes: subscribers are on
the first, every change is made through the second, so events cross processes through
Redis pub/sub. In the embedded mode (SQLite, in-process bus) there is one process, which
both serves the subscribers and takes the changes. Tests get one per module from the
`fleet` fixture (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.platform.global_ids import to_global_id
from tests.checkout_shop import checkout, fill_cart
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import Shop, private_shop
from tests.server_processes import server_process

ORDER_STATUS = "subscription ($id: ID!) { orderStatusChanged(orderId: $id) { id status } }"
PRODUCT = """subscription ($id: ID!) {
  productUpdated(productId: $id) { id name variants { id stockQuantity } }
}"""
LOW_STOCK = "subscription ($t: Int!) { lowStock(threshold: $t) { id sku stockQuantity } }"
REVIEW = "subscription ($id: ID!) { reviewAdded(productId: $id) { id rating title } }"
RENAME = """mutation ($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { userErrors { message } }
}"""
SET_STOCK = """mutation ($id: ID!, $quantity: Int!) {
  setStock(variantId: $id, quantity: $quantity) { userErrors { message } }
}"""
CANCEL = (
    "mutation ($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
)
REVIEW_ADD = """mutation ($input: ReviewInput!) {
  createReview(input: $input) { review { id } userErrors { message } }
}"""
# Events must reach a subscriber on another process within this (the issue: a second).
WITHIN_SECONDS = 1.0


@dataclass
class Fleet:
    """The private shop, its server processes, and callers talking to the writing one."""

    shop: Shop
    bases: list[str]
    clients: list[httpx.AsyncClient]

    @property
    def reader(self) -> str:
        """Where subscribers connect."""
        return self.bases[0]

    @property
    def writer(self) -> str:
        """Where changes are made (another process when there are two)."""
        return self.bases[-1]

    def caller(self, client: GraphQLClient, base: str | None = None) -> GraphQLClient:
        """The same caller (same token), talking to a server process over HTTP."""
        http = httpx.AsyncClient(base_url=base or self.writer, timeout=30)
        self.clients.append(http)
        return GraphQLClient(http, dict(client.headers))


@asynccontextmanager
async def open_fleet(backend: Backend, tmp_dir: Path, label: str) -> AsyncIterator[Fleet]:
    """A private shop served by one process (embedded) or two (PostgreSQL and Redis)."""
    async with private_shop(
        backend,
        tmp_dir,
        label,
        cache_enabled=True,
        ws_init_timeout_seconds=1.0,
        ws_max_operations=3,
        ws_max_connections_per_viewer=4,
    ) as shop:
        count = 2 if backend.redis_url else 1
        with contextlib.ExitStack() as stack:
            bases = [stack.enter_context(server_process(shop.settings)) for _ in range(count)]
            fleet = Fleet(shop, bases, [])
            try:
                yield fleet
            finally:
                for http in fleet.clients:
                    await http.aclose()


async def pick_variant(fleet: Fleet, offset: int = 0) -> dict[str, Any]:
    rows = await fleet.shop.rows(
        "SELECT v.id, v.sku, v.product_id FROM product_variants v JOIN products p"
        " ON p.id = v.product_id WHERE p.is_published ORDER BY v.id"
    )
    row = rows[offset]
    return {
        "id": to_global_id("ProductVariant", row.id),
        "sku": row.sku,
        "product": to_global_id("Product", row.product_id),
    }


async def set_stock(staff: GraphQLClient, variant: dict[str, Any], quantity: int) -> None:
    data = await staff.query(SET_STOCK, {"id": variant["id"], "quantity": quantity})
    assert data["setStock"]["userErrors"] == []


async def until_live(subscription: Any, staff: GraphQLClient, product: str) -> None:
    """Wait until a productUpdated subscription hears changes (renames until one arrives)."""
    for _ in range(20):
        await staff.query(RENAME, {"id": product, "name": f"Probe {uuid.uuid4().hex[:6]}"})
        with contextlib.suppress(TimeoutError):
            await subscription.next(within=0.5)
            return
    raise AssertionError("the subscription never heard a change")


def stock_of_variant(event: dict[str, Any], variant_id: str) -> int | None:
    for variant in event["productUpdated"]["variants"]:
        if variant["id"] == variant_id:
            return int(variant["stockQuantity"])
    return None


async def until(subscription: Any, wanted: Any, within: float = 5.0) -> dict[str, Any]:
    """The first result `wanted(result)` accepts (earlier ones were other changes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await subscription.next(within=max(0.01, deadline - loop.time()))
        if wanted(result):
            return result  # type: ignore[no-any-return]


async def place_order(fleet: Fleet, customer: GraphQLClient, variant: dict[str, Any]) -> str:
    token = await fill_cart(customer, variant["id"], 1)
    placed = await checkout(customer, cart_token=token)
    assert placed["userErrors"] == [], placed
    return str(placed["order"]["id"])
