"""Relay `node` and `nodes`: fetch any object by its global ID."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry

from app.context import Context, Viewer
from app.loaders import Loaders
from app.platform.errors import InvalidInput
from app.platform.global_ids import from_global_id
from app.resolvers.orders import may_read as may_read_order
from app.schema.accounts import Address, User
from app.schema.catalog import Category, Product, ProductVariant, Review
from app.schema.orders import Order
from app.schema.relay import Node
from app.schema.scopes import CATALOG

MAX_NODES = 100

_FETCHERS: dict[str, Callable[[Loaders, int], Awaitable[Node | None]]] = {}


def _fetcher(type_name: str) -> Callable[[Callable[[Loaders, int], Awaitable[Node | None]]], Any]:
    def register(fn: Callable[[Loaders, int], Awaitable[Node | None]]) -> Any:
        _FETCHERS[type_name] = fn
        return fn

    return register


@_fetcher("Product")
async def _product(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.product_by_id.load(pk)
    return Product.from_row(row) if row is not None else None


@_fetcher("ProductVariant")
async def _variant(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.variant_by_id.load(pk)
    return ProductVariant.from_row(row) if row is not None else None


@_fetcher("Category")
async def _category(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.category_by_id.load(pk)
    return Category.from_row(row) if row is not None else None


@_fetcher("Review")
async def _review(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.review_by_id.load(pk)
    return Review.from_row(row) if row is not None else None


@_fetcher("User")
async def _user(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.user_by_id.load(pk)
    return User.from_row(row) if row is not None else None


@_fetcher("Address")
async def _address(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.address_by_id.load(pk)
    return Address.from_row(row) if row is not None else None


@_fetcher("Order")
async def _order(loaders: Loaders, pk: int) -> Node | None:
    row = await loaders.order_by_id.load(pk)
    return Order.from_row(row) if row is not None else None


def _order_visible(viewer: Viewer, node: Any) -> bool:
    """An order is visible to its customer, staff and partners holding orders:read."""
    return may_read_order(viewer, node.row)


def _user_visible(viewer: Viewer, node: Any) -> bool:
    """A user is visible to themself and to staff."""
    return viewer.is_staff or (viewer.user_id is not None and node.pk == viewer.user_id)


def _address_visible(viewer: Viewer, node: Any) -> bool:
    """An address is visible to its owner only."""
    return viewer.user_id is not None and node.user_id == viewer.user_id


# Types not everyone may see: fetched, then checked against the viewer (null when not visible).
_VISIBLE_TO: dict[str, Callable[[Viewer, Any], bool]] = {
    "User": _user_visible,
    "Address": _address_visible,
    "Order": _order_visible,
}


async def _fetch_node(context: Context, id: str) -> Node | None:
    decoded = from_global_id(id)
    fetch = _FETCHERS.get(decoded.type_name)
    if fetch is None:
        raise InvalidInput(
            f"Invalid ID {id[:80]!r}: no object type {decoded.type_name!r} can be fetched by ID"
        )
    node = await fetch(context.loaders, decoded.pk)
    visible = _VISIBLE_TO.get(decoded.type_name)
    if node is not None and visible is not None and not visible(context.viewer, node):
        return None
    return node


@strawberry.type
class NodeQuery:
    """Relay object identification."""

    @strawberry.field(
        description="Any object by its global ID; null if it does not exist or is not visible.",
        metadata=CATALOG,
    )
    async def node(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID.")],
    ) -> Node | None:
        return await _fetch_node(info.context, id)

    @strawberry.field(
        description="Several objects by global ID, in the same order; null where one is missing.",
        metadata=CATALOG,
    )
    async def nodes(
        self,
        info: strawberry.Info,
        ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(description=f"Global IDs (at most {MAX_NODES})."),
        ],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise InvalidInput(f"`ids` must hold at most {MAX_NODES} IDs")
        return list(await asyncio.gather(*(_fetch_node(info.context, id) for id in ids)))
