"""Root cart fields: `cart`, and the mutations `addToCart`, `updateCartLine`, `removeCartLine`."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import Row

from app.context import Context
from app.platform.global_ids import decode_id_of
from app.resolvers.mutations import Argument, global_id, mutation, payload_of
from app.schema.cart import AddToCartInput, Cart, CartPayload
from app.schema.scopes import NOT_FOR_PARTNERS
from app.services import cart
from app.services.cart import CartLimits

CART = payload_of(CartPayload, "cart", Cart.from_row)
CART_TOKEN_HELP = "The token of a guest cart. Omitted: the signed-in customer's own cart."
CART_TOKEN = Argument(str | None, CART_TOKEN_HELP)
LINE_ID = global_id("CartLine", "The ID of a line of the cart.")
QUANTITY = Argument(int, "The line's new quantity (at least 1; use removeCartLine to remove it).")

CartTokenArgument = Annotated[str | None, strawberry.argument(description=CART_TOKEN_HELP)]


def _fresh(context: Context, row: Row[Any]) -> Row[Any]:
    # The payload reads the lines after the change, not what this request loaded before it.
    context.loaders.cart_lines_by_cart_id.clear(row.id)
    return row


@strawberry.type
class CartQuery:
    """Cart reads."""

    @strawberry.field(
        description="A guest cart by its token, or without a token the signed-in customer's "
        "cart; null when there is none, or it is another customer's.",
        metadata=NOT_FOR_PARTNERS,
    )
    async def cart(
        self, info: strawberry.Info[Context], token: CartTokenArgument = None
    ) -> Cart | None:
        loaders, user_id = info.context.loaders, info.context.viewer.user_id
        if token is not None:
            row = await loaders.cart_by_token.load(token)
        else:
            row = None if user_id is None else await loaders.cart_by_user_id.load(user_id)
        if row is None or not cart.may_use(row, user_id):
            return None
        return Cart.from_row(row)


@strawberry.type
class CartMutation:
    """Cart changes."""

    @mutation(CART, input=Argument(AddToCartInput, "What to add."), scope=NOT_FOR_PARTNERS)
    async def add_to_cart(context: Context, *, input: AddToCartInput) -> Row[Any]:
        """Put units of a variant in a cart: the one `cartToken` names, the customer's own, or a new guest cart."""
        row = await cart.add_to_cart(
            context.db,
            limits=CartLimits.of(context.settings),
            user_id=context.viewer.user_id,
            cart_token=input.cart_token,
            variant_id=decode_id_of(input.variant_id, "ProductVariant", field="variant_id"),
            quantity=input.quantity,
        )
        return _fresh(context, row)

    @mutation(
        CART, cart_token=CART_TOKEN, line_id=LINE_ID, quantity=QUANTITY, scope=NOT_FOR_PARTNERS
    )
    async def update_cart_line(
        context: Context, *, line_id: int, quantity: int, cart_token: str | None = None
    ) -> Row[Any]:
        """Set the quantity of a cart line."""
        row = await cart.update_cart_line(
            context.db,
            limits=CartLimits.of(context.settings),
            user_id=context.viewer.user_id,
            cart_token=cart_token,
            line_id=line_id,
            quantity=quantity,
        )
        return _fresh(context, row)

    @mutation(CART, cart_token=CART_TOKEN, line_id=LINE_ID, scope=NOT_FOR_PARTNERS)
    async def remove_cart_line(
        context: Context, *, line_id: int, cart_token: str | None = None
    ) -> Row[Any]:
        """Take a line out of a cart."""
        row = await cart.remove_cart_line(
            context.db, user_id=context.viewer.user_id, cart_token=cart_token, line_id=line_id
        )
        return _fresh(context, row)
