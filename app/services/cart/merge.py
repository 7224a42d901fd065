"""Merging a guest cart into the customer's cart when the guest signs in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.work import UnitOfWork
from app.models.base import utcnow
from app.services.cart import rules
from app.services.cart.rules import CartLimits, cart_lines, carts
from app.services.locking import lock_owner


async def merge_guest_cart(
    work: UnitOfWork, *, limits: CartLimits, user_id: int, cart_token: str
) -> bool:
    """Move a guest cart's lines into the customer's cart, inside the caller's unit of work.

    Quantities of a variant in both are summed and capped at the line maximum; lines past
    the cart's line limit are dropped; the guest cart is gone afterwards. Without a customer
    cart the guest cart simply becomes theirs. A token that names no guest cart (unknown,
    or a customer's) merges nothing: False.
    """
    connection = work.connection
    customer_cart = await rules.lock_customer_cart(connection, user_id, create=False)
    guest = await _lock_guest_cart(connection, cart_token)
    if guest is None:
        return False
    now = utcnow()
    if customer_cart is None:
        await connection.execute(
            update(carts).where(carts.c.id == guest.id).values(user_id=user_id, updated_at=now)
        )
        work.record(rules.cart_change(guest.id))
        return True
    target = customer_cart.id
    existing = {
        row.variant_id: row
        for row in await connection.execute(
            select(cart_lines).where(cart_lines.c.cart_id == target)
        )
    }
    room = limits.max_lines - len(existing)
    incoming = await connection.execute(
        select(cart_lines).where(cart_lines.c.cart_id == guest.id).order_by(cart_lines.c.id)
    )
    for line in incoming.all():
        mine = existing.get(line.variant_id)
        if mine is not None:
            summed = min(mine.quantity + line.quantity, limits.max_line_quantity)
            await connection.execute(
                update(cart_lines).where(cart_lines.c.id == mine.id).values(quantity=summed)
            )
        elif room > 0:
            room -= 1
            capped = min(line.quantity, limits.max_line_quantity)
            await connection.execute(
                update(cart_lines)
                .where(cart_lines.c.id == line.id)
                .values(cart_id=target, quantity=capped)
            )
    await connection.execute(delete(carts).where(carts.c.id == guest.id))  # its lines go too
    await rules.touch_cart(connection, target, now)
    work.record(rules.cart_change(target), rules.cart_change(guest.id))
    return True


async def _lock_guest_cart(connection: AsyncConnection, cart_token: str) -> Row[Any] | None:
    if len(cart_token) > rules.MAX_TOKEN_LENGTH:
        return None
    found = (
        await connection.execute(
            select(carts.c.id).where(carts.c.token == cart_token, carts.c.user_id.is_(None))
        )
    ).scalar_one_or_none()
    if found is None:
        return None
    cart = await lock_owner(connection, carts, found)
    return cart if cart is not None and cart.user_id is None else None
