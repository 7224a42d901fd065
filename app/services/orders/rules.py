"""Shared rules of the order services: tables, change events, sealed addresses, the state machine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.loaders.base import table_of
from app.models import (
    Address,
    Cart,
    CartLine,
    CheckoutKey,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentEvent,
    Product,
    ProductVariant,
    User,
)
from app.platform.errors import DomainError, ErrorKind
from app.platform.events import Change

orders = table_of(Order)
order_lines = table_of(OrderLine)
payments = table_of(Payment)
payment_events = table_of(PaymentEvent)
checkout_keys = table_of(CheckoutKey)
carts = table_of(Cart)
cart_lines = table_of(CartLine)
variants = table_of(ProductVariant)
products = table_of(Product)
addresses = table_of(Address)
users = table_of(User)

# Where an order may go from each status; anything else is ILLEGAL_TRANSITION.
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(
        {OrderStatus.PAID, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PAID: frozenset(
        {OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
    ),
    OrderStatus.FULFILLED: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
    OrderStatus.PAYMENT_FAILED: frozenset({OrderStatus.CANCELLED}),
}
# Moving to these gives the reserved stock back. A refund is only allowed before the order
# ships (PAID, FULFILLED): the goods are still in the shop, so they go back on sale.
RETURNS_STOCK = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})


class OutOfStock(DomainError):
    """Some lines cannot be had in the quantity asked for."""

    kind = ErrorKind.OUT_OF_STOCK


class PaymentDeclined(DomainError):
    """The payment was refused, or could not be completed."""

    kind = ErrorKind.PAYMENT_DECLINED


class IdempotencyKeyReused(DomainError):
    """The idempotency key was used before for another cart."""

    kind = ErrorKind.IDEMPOTENCY_KEY_REUSED


class IllegalTransition(DomainError):
    """The order's state machine has no such step from where the order is."""

    kind = ErrorKind.ILLEGAL_TRANSITION


def order_change(order_id: int) -> Change:
    """The change event of an order (its status, lines or payments changed)."""
    return Change("Order", order_id)


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """ILLEGAL_TRANSITION unless the state machine allows current -> target."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"An order cannot go from {current.value} to {target.value}", field="status"
        )


async def order_row(connection: AsyncConnection, order_id: int) -> Row[Any]:
    """An `orders` row that exists."""
    return (await connection.execute(select(orders).where(orders.c.id == order_id))).one()
