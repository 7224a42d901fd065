"""Adding, changing and removing cart lines.

Each operation is one unit of work that locks the cart row first, so the line count
and a line's quantity are read and written by one writer at a time; every refusal is a
DomainError raised before anything is written, and it rolls back what was.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models.base import utcnow
from app.platform.errors import DomainError, ErrorKind, InvalidInput, NotFound
from app.services.cart import rules
from app.services.cart.rules import CartLimits, cart_lines


async def add_to_cart(
    db: Database,
    *,
    limits: CartLimits,
    user_id: int | None,
    cart_token: str | None,
    variant_id: int,
    quantity: int,
) -> Row[Any]:
    """Put `quantity` units of a variant in the cart (more of it if it is there); the cart."""
    rules.check_quantity(quantity, limits)
    async with db.unit_of_work() as work:
        connection = work.connection
        await rules.visible_variant(connection, variant_id)
        cart = await _cart(connection, user_id=user_id, cart_token=cart_token, create=True)
        assert cart is not None
        line = (
            await connection.execute(
                select(cart_lines).where(
                    cart_lines.c.cart_id == cart.id, cart_lines.c.variant_id == variant_id
                )
            )
        ).first()
        if line is not None:
            total = line.quantity + quantity
            if total > limits.max_line_quantity:
                raise InvalidInput(
                    f"The cart already holds {line.quantity} of this variant; "
                    f"a line holds at most {limits.max_line_quantity}",
                    field="quantity",
                )
            await connection.execute(
                update(cart_lines).where(cart_lines.c.id == line.id).values(quantity=total)
            )
        else:
            if await rules.line_count(connection, cart.id) >= limits.max_lines:
                raise InvalidInput(
                    f"A cart holds at most {limits.max_lines} different variants",
                    field="variant_id",
                )
            await connection.execute(
                insert(cart_lines).values(
                    cart_id=cart.id, variant_id=variant_id, quantity=quantity, created_at=utcnow()
                )
            )
        work.record(rules.cart_change(cart.id))
        return await rules.touch_cart(connection, cart.id, utcnow())


async def update_cart_line(
    db: Database,
    *,
    limits: CartLimits,
    user_id: int | None,
    cart_token: str | None,
    line_id: int,
    quantity: int,
) -> Row[Any]:
    """Set the quantity of one line of the cart; the cart."""
    rules.check_quantity(quantity, limits)
    async with db.unit_of_work() as work:
        connection = work.connection
        cart = await _existing_cart(connection, user_id=user_id, cart_token=cart_token)
        changed = await connection.execute(
            update(cart_lines)
            .where(cart_lines.c.id == line_id, cart_lines.c.cart_id == cart.id)
            .values(quantity=quantity)
        )
        if changed.rowcount != 1:
            raise NotFound("The cart has no such line", field="line_id")
        work.record(rules.cart_change(cart.id))
        return await rules.touch_cart(connection, cart.id, utcnow())


async def remove_cart_line(
    db: Database, *, user_id: int | None, cart_token: str | None, line_id: int
) -> Row[Any]:
    """Take one line out of the cart; the cart."""
    async with db.unit_of_work() as work:
        connection = work.connection
        cart = await _existing_cart(connection, user_id=user_id, cart_token=cart_token)
        removed = await connection.execute(
            delete(cart_lines).where(cart_lines.c.id == line_id, cart_lines.c.cart_id == cart.id)
        )
        if removed.rowcount != 1:
            raise NotFound("The cart has no such line", field="line_id")
        work.record(rules.cart_change(cart.id))
        return await rules.touch_cart(connection, cart.id, utcnow())


async def _cart(
    connection: AsyncConnection, *, user_id: int | None, cart_token: str | None, create: bool
) -> Row[Any] | None:
    """The cart a request names, locked: by token, else the customer's, else a new guest cart."""
    if cart_token is not None:
        return await rules.lock_cart_by_token(connection, cart_token, user_id=user_id)
    if user_id is not None:
        return await rules.lock_customer_cart(connection, user_id, create=create)
    return await rules.create_cart(connection, user_id=None) if create else None


async def _existing_cart(
    connection: AsyncConnection, *, user_id: int | None, cart_token: str | None
) -> Row[Any]:
    cart = await _cart(connection, user_id=user_id, cart_token=cart_token, create=False)
    if cart is not None:
        return cart
    if user_id is None:
        raise DomainError(
            "A guest names their cart by its token", field="cart_token", kind=ErrorKind.REQUIRED
        )
    raise NotFound("The cart has no such line", field="line_id")  # no cart yet: no lines
