"""Shared rules of the cart services: limits, who may use a cart, finding and locking carts.

Who may use a cart: whoever holds the token of a guest cart (no owner), and only its
owner for a customer's cart, whatever token is shown. Without a token, a signed-in
customer's cart is their own one (made on first use); a guest without a token gets a
new cart on the first `add_to_cart`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.loaders.base import table_of
from app.models import Cart, CartLine, Product, ProductVariant, User
from app.models.base import utcnow
from app.platform.errors import InvalidInput, NotFound, PermissionDenied
from app.platform.events import Change
from app.services.locking import lock_owner
from app.settings import Settings

carts = table_of(Cart)
cart_lines = table_of(CartLine)
variants = table_of(ProductVariant)
products = table_of(Product)
users = table_of(User)

TOKEN_BYTES = 24  # 32 URL-safe characters, 192 random bits
MAX_TOKEN_LENGTH = 64  # the column's width: a longer token names no cart


@dataclass(frozen=True, slots=True)
class CartLimits:
    """How much one cart may hold (from settings: MAX_CART_LINE_QUANTITY, MAX_CART_LINES)."""

    max_line_quantity: int
    max_lines: int

    @classmethod
    def of(cls, settings: Settings) -> CartLimits:
        """The limits the settings give."""
        return cls(
            max_line_quantity=settings.max_cart_line_quantity, max_lines=settings.max_cart_lines
        )


def new_token() -> str:
    """A fresh, unguessable cart token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def cart_change(cart_id: int) -> Change:
    """The change event of a cart (its lines, quantities or owner changed)."""
    return Change("Cart", cart_id)


def may_use(cart: Row[Any], user_id: int | None) -> bool:
    """Whether a viewer (None: a guest) may see and change a cart they name by token."""
    return cart.user_id is None or cart.user_id == user_id


def check_quantity(quantity: int, limits: CartLimits, *, field: str = "quantity") -> None:
    """A line quantity from 1 to the configured maximum."""
    if not 1 <= quantity <= limits.max_line_quantity:
        raise InvalidInput(
            f"The quantity must be between 1 and {limits.max_line_quantity}", field=field
        )


async def lock_cart_by_token(
    connection: AsyncConnection, token: str, *, user_id: int | None
) -> Row[Any]:
    """The cart a token names, locked until commit; NOT_FOUND / FORBIDDEN otherwise."""
    found = None
    if len(token) <= MAX_TOKEN_LENGTH:
        found = (
            await connection.execute(select(carts.c.id).where(carts.c.token == token))
        ).scalar_one_or_none()
    cart = None if found is None else await lock_owner(connection, carts, found)
    if cart is None:
        raise NotFound("No cart has this token", field="cart_token")
    if not may_use(cart, user_id):
        raise PermissionDenied("This cart belongs to another customer", field="cart_token")
    return cart


async def lock_customer_cart(
    connection: AsyncConnection, user_id: int, *, create: bool
) -> Row[Any] | None:
    """A customer's cart, locked until commit; made first when `create` (else None if none)."""
    # The user's row is locked first: two first adds of one customer make one cart.
    if await lock_owner(connection, users, user_id) is None:
        raise NotFound("No such user")
    found = (
        await connection.execute(select(carts.c.id).where(carts.c.user_id == user_id))
    ).scalar_one_or_none()
    if found is not None:
        return await lock_owner(connection, carts, found)
    if not create:
        return None
    return await create_cart(connection, user_id=user_id)


async def create_cart(connection: AsyncConnection, *, user_id: int | None) -> Row[Any]:
    """Insert an empty cart (a guest's when `user_id` is None)."""
    now = utcnow()
    result = await connection.execute(
        insert(carts)
        .values(token=new_token(), user_id=user_id, created_at=now, updated_at=now)
        .returning(*carts.c)
    )
    return result.one()


async def visible_variant(connection: AsyncConnection, variant_id: int) -> Row[Any]:
    """A variant of a published product; NOT_FOUND otherwise."""
    row = (
        await connection.execute(
            select(variants.c.id)
            .join(products, products.c.id == variants.c.product_id)
            .where(variants.c.id == variant_id, products.c.is_published == true())
        )
    ).first()
    if row is None:
        raise NotFound("No such product variant", field="variant_id")
    return row


async def line_count(connection: AsyncConnection, cart_id: int) -> int:
    """How many lines a cart has."""
    counted = await connection.execute(
        select(func.count()).select_from(cart_lines).where(cart_lines.c.cart_id == cart_id)
    )
    return int(counted.scalar_one())


async def touch_cart(connection: AsyncConnection, cart_id: int, now: datetime) -> Row[Any]:
    """Mark a cart as changed (for abandoned-cart clean-up); the cart row after it."""
    result = await connection.execute(
        update(carts).where(carts.c.id == cart_id).values(updated_at=now).returning(*carts.c)
    )
    return result.one()
