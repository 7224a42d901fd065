"""Cart types: the cart, its lines, and the inputs and payload of cart mutations.

A cart is the viewer's own: every type here is PRIVATE (maxAge 0), and the cart loaders
name no cache tags, so no response with a cart in it is ever stored or served from cache.
Totals are computed here from the variants' current prices, never sent by clients.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import Row

from app.platform.global_ids import to_global_id
from app.schema.cache_hints import PRIVATE
from app.schema.catalog import ProductVariant
from app.schema.common import Money
from app.schema.errors import UserError
from app.schema.relations import each, optional, relation
from app.schema.relay import Node


@strawberry.type(description="A quantity of one product variant in a cart.", directives=[PRIVATE])
class CartLine:
    """A cart line."""

    pk: strawberry.Private[int]
    variant_id: strawberry.Private[int]
    unit_price_minor: strawberry.Private[int]
    currency: strawberry.Private[str]
    stock: strawberry.Private[int]
    quantity: int = strawberry.field(description="Units of the variant in the cart (at least 1).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> CartLine:
        """Build from a row of the cart lines loader (a line with its variant's price and stock)."""
        return cls(
            pk=row.id,
            variant_id=row.variant_id,
            unit_price_minor=row.unit_price_minor,
            currency=row.currency,
            stock=row.stock,
            quantity=row.quantity,
        )

    @strawberry.field(
        description="The opaque ID of this line (for `updateCartLine` and `removeCartLine`)."
    )
    def id(self) -> strawberry.ID:
        return strawberry.ID(to_global_id("CartLine", self.pk))

    @strawberry.field(description="The variant's current unit price times the quantity.")
    def line_total(self) -> Money:
        return Money.from_minor(self.unit_price_minor * self.quantity, self.currency)

    @strawberry.field(
        description="Whether the quantity is in stock now (nothing is reserved before checkout)."
    )
    def available(self) -> bool:
        return self.stock >= self.quantity

    variant: ProductVariant = relation(
        loader=lambda loaders: loaders.variant_by_id,
        key=lambda line: line.variant_id,
        build=optional(lambda row: ProductVariant.from_row(row)),
        description="The product variant in the cart.",
    )


@strawberry.type(
    description="A shopping cart: a guest's (found by its token) or a signed-in customer's.",
    directives=[PRIVATE],
)
class Cart(Node):
    """A cart."""

    pk: strawberry.Private[int]
    token: str = strawberry.field(
        description="The opaque cart token: a guest sends it back to use this cart again, "
        "and as `cartToken` when signing in to merge the cart into their own. Keep it secret."
    )

    @classmethod
    def from_row(cls, row: Row[Any]) -> Cart:
        """Build from a `carts` row."""
        return cls(pk=row.id, token=row.token)

    lines: list[CartLine] = relation(
        loader=lambda loaders: loaders.cart_lines_by_cart_id,
        key=lambda cart: cart.pk,
        build=each(lambda row: CartLine.from_row(row)),
        description="The lines, oldest first; lines of products no longer published are left out.",
    )

    @strawberry.field(
        description="The sum of the line totals at current prices (0 in the shop currency when empty)."
    )
    async def subtotal(self, info: strawberry.Info) -> Money:
        rows = await info.context.loaders.cart_lines_by_cart_id.load(self.pk)
        currency = rows[0].currency if rows else info.context.settings.currency
        return Money.from_minor(sum(row.unit_price_minor * row.quantity for row in rows), currency)


@strawberry.type(description="The result of a cart mutation.")
class CartPayload:
    """The cart after the change, or why nothing changed."""

    cart: Cart | None = strawberry.field(
        default=None, description="The cart after the change; null when it failed."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the change failed; empty on success."
    )


@strawberry.input(description="What to put in a cart.")
class AddToCartInput:
    """Add-to-cart data."""

    cart_token: str | None = strawberry.field(
        default=None,
        description="The cart to add to. Omitted: a signed-in customer's own cart (made on first "
        "use), or for a guest a new cart whose token the payload returns.",
    )
    variant_id: strawberry.ID = strawberry.field(
        description="Global ID of the product variant (of a published product)."
    )
    quantity: int = strawberry.field(
        description="Units to add (at least 1); added to the line if the variant is in the cart "
        "already. A line holds at most MAX_CART_LINE_QUANTITY units (99 by default)."
    )
