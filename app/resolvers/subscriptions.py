"""Root subscription fields: an order's status, a product, its new reviews, low stock.

Each field checks who may watch before it starts (the same rules as the matching query
fields), then waits on the process's change hub (app/platform/change_hub.py) for the
committed changes that touch what it watches. On every such batch it reads the object
again through fresh loaders (`Context.renew_loaders`: one event's reads never see the
previous event's batch) and yields it when it changed in the way the field promises.
The payload's fields then resolve like a query's, with the same permission classes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row

from app.context import Context
from app.engine import ClientError, ErrorCode
from app.platform.events import Change, entity_tag
from app.platform.global_ids import decode_id_of
from app.resolvers.orders import may_read
from app.schema.catalog import Product, ProductVariant, Review
from app.schema.orders import Order
from app.schema.permissions import STAFF
from app.schema.scopes import CATALOG, INVENTORY, ORDERS, REVIEWS

OrderId = Annotated[strawberry.ID, strawberry.argument(description="Global ID of the order.")]
ProductId = Annotated[strawberry.ID, strawberry.argument(description="Global ID of the product.")]
Threshold = Annotated[
    int,
    strawberry.argument(description="Report variants whose stock is at or below this (>= 0)."),
]


def _hub(context: Context) -> Any:
    assert context.caching is not None, "the app always has a change hub"
    return context.caching.hub


def _not_found(what: str) -> ClientError:
    # Someone else's order is "not found" too: watching must not reveal that it exists.
    return ClientError(
        f"There is no {what} with this ID that you may watch", code=ErrorCode.NOT_FOUND
    )


def _ids_of(batch: Sequence[Change], entity: str) -> list[int]:
    return [change.id for change in batch if change.entity == entity and change.id is not None]


@strawberry.type(
    description="Everything clients can watch, over WebSocket (graphql-transport-ws or "
    "graphql-ws) or Server-Sent Events."
)
class Subscription:
    """The root subscription type."""

    @strawberry.subscription(
        description="The order each time its status changes: for its customer, staff, and "
        "partners with the scope orders:read.",
        metadata=ORDERS,
    )
    async def order_status_changed(
        self, info: strawberry.Info[Context], order_id: OrderId
    ) -> AsyncGenerator[Order, None]:
        context = info.context
        pk = decode_id_of(order_id, "Order", field="orderId")
        row = await context.loaders.order_by_id.load(pk)
        if row is None or not may_read(context.viewer, row):
            raise _not_found("order")
        async with _hub(context).listen(tags=[entity_tag("Order", pk)]) as batches:
            status = row.status
            while True:
                await batches.get()
                row = await context.renew_loaders().order_by_id.load(pk)
                if row is None:
                    return
                if row.status != status:
                    status = row.status
                    yield Order.from_row(row)

    @strawberry.subscription(
        description="The product each time it changes (price, stock, availability, published "
        "state). Ends when the product is no longer visible to you.",
        metadata=CATALOG,
    )
    async def product_updated(
        self, info: strawberry.Info[Context], product_id: ProductId
    ) -> AsyncGenerator[Product, None]:
        context = info.context
        pk = decode_id_of(product_id, "Product", field="productId")
        if await context.loaders.product_by_id.load(pk) is None:
            raise _not_found("product")
        async with _hub(context).listen(tags=[entity_tag("Product", pk)]) as batches:
            while True:
                await batches.get()
                row = await context.renew_loaders().product_by_id.load(pk)
                if row is None:
                    return
                yield Product.from_row(row)

    @strawberry.subscription(
        description="Each review written for the product from now on.", metadata=REVIEWS
    )
    async def review_added(
        self, info: strawberry.Info[Context], product_id: ProductId
    ) -> AsyncGenerator[Review, None]:
        context = info.context
        pk = decode_id_of(product_id, "Product", field="productId")
        if await context.loaders.product_by_id.load(pk) is None:
            raise _not_found("product")
        since = time.time()
        seen: set[int] = set()
        async with _hub(context).listen(tags=[entity_tag("Product", pk)]) as batches:
            while True:
                batch = await batches.get()
                loaders = context.renew_loaders()
                for review_id in _ids_of(batch, "Review"):
                    row = await loaders.review_by_id.load(review_id)
                    if row is not None and _is_new_review(row, pk, since) and review_id not in seen:
                        seen.add(review_id)
                        yield Review.from_row(row)

    @strawberry.subscription(
        description="A variant each time a change leaves its stock at or below the "
        "threshold. Staff only.",
        permission_classes=STAFF,
        metadata=INVENTORY,
    )
    async def low_stock(
        self, info: strawberry.Info[Context], threshold: Threshold = 5
    ) -> AsyncGenerator[ProductVariant, None]:
        if threshold < 0:
            raise ClientError("threshold must be 0 or more", code=ErrorCode.BAD_USER_INPUT)
        context = info.context
        reported: dict[int, int] = {}  # variant -> the stock last reported
        async with _hub(context).listen(entities=["ProductVariant"]) as batches:
            while True:
                batch = await batches.get()
                loaders = context.renew_loaders()
                for variant_id in _ids_of(batch, "ProductVariant"):
                    row = await loaders.variant_by_id.load(variant_id)
                    if row is None or row.stock > threshold:
                        reported.pop(variant_id, None)
                        continue
                    if reported.get(variant_id) != row.stock:
                        reported[variant_id] = row.stock
                        yield ProductVariant.from_row(row)


def _is_new_review(row: Row[Any], product_id: int, since: float) -> bool:
    # A second of slack: the clocks of two server processes may differ a little.
    return row.product_id == product_id and _epoch(row.created_at) >= since - 1.0


def _epoch(moment: datetime) -> float:
    # SQLite gives naive datetimes; every stored time is UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


__all__ = ["Subscription"]
