"""Order status changes along the state machine (rules.TRANSITIONS): cancel, and staff moves.

Each change is one unit of work that locks the order row, checks the step from the status
it finds, and writes the new status with the old one as condition; cancelling returns the
reserved stock, and cancelling or refunding a paid order refunds its captured payment at
the gateway. An illegal step is ILLEGAL_TRANSITION and writes nothing.

The gateway's refund runs inside the unit of work with a key per payment
(`refund:<payment id>`): should the commit fail after the gateway refunded, the retried
refund meets the same key and gets the same refund back, so money is given back once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.db.work import UnitOfWork
from app.models import OrderStatus, PaymentStatus
from app.models.base import utcnow
from app.platform.errors import NotFound
from app.services.catalog.variants import variant_changes
from app.services.jobs.requests import order_mail_job
from app.services.locking import lock_owner
from app.services.orders import rules
from app.services.orders.rules import order_lines, orders, payment_events, payments, variants
from app.services.payments.gateway import Declined, GatewayError, PaymentGateway

# Statuses from which a change gives the captured money back.
_PAID = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED})


async def cancel_order(
    db: Database, *, gateway: PaymentGateway, order_id: int, user_id: int, is_staff: bool
) -> Row[Any]:
    """Cancel an order (its customer or staff): stock goes back, a captured payment is refunded."""
    async with db.unit_of_work() as work:
        order = await _lock_order(work.connection, order_id, user_id=user_id, is_staff=is_staff)
        return await _move(work, gateway, order, OrderStatus.CANCELLED)


async def update_order_status(
    db: Database, *, gateway: PaymentGateway, order_id: int, status: OrderStatus
) -> Row[Any]:
    """Move an order one step along the state machine (staff)."""
    async with db.unit_of_work() as work:
        order = await _lock_order(work.connection, order_id, user_id=None, is_staff=True)
        return await _move(work, gateway, order, status)


async def refund_order(db: Database, *, gateway: PaymentGateway, order_id: int) -> Row[Any]:
    """Refund a PAID or FULFILLED order in full (staff): the payment is given back, stock returns."""
    async with db.unit_of_work() as work:
        order = await _lock_order(work.connection, order_id, user_id=None, is_staff=True)
        return await _move(work, gateway, order, OrderStatus.REFUNDED)


async def _lock_order(
    connection: AsyncConnection, order_id: int, *, user_id: int | None, is_staff: bool
) -> Row[Any]:
    order = await lock_owner(connection, orders, order_id)
    # Someone else's order is as unknown as a missing one: its existence is not told.
    if order is None or not (is_staff or (user_id is not None and order.user_id == user_id)):
        raise NotFound("No such order", field="order_id")
    return order


async def _move(
    work: UnitOfWork, gateway: PaymentGateway, order: Row[Any], target: OrderStatus
) -> Row[Any]:
    connection = work.connection
    current = OrderStatus(order.status)
    rules.check_transition(current, target)
    lines = (
        await connection.execute(
            select(order_lines.c.variant_id, order_lines.c.quantity, variants.c.product_id)
            .join(variants, variants.c.id == order_lines.c.variant_id)
            .where(order_lines.c.order_id == order.id)
            .order_by(order_lines.c.variant_id)
        )
    ).all()
    # A failed payment gave the stock back already (app/services/jobs/capture.py).
    if target in rules.RETURNS_STOCK and current is not OrderStatus.PAYMENT_FAILED:
        for line in lines:
            await connection.execute(
                update(variants)
                .where(variants.c.id == line.variant_id)
                .values(stock=variants.c.stock + line.quantity)
            )
            work.record(*variant_changes(line.variant_id, line.product_id))
    if current in _PAID and target in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        await _refund(connection, gateway, order.id)
    changed = await connection.execute(
        update(orders)
        .where(orders.c.id == order.id, orders.c.status == current.value)
        .values(status=target.value, updated_at=utcnow())
    )
    assert changed.rowcount == 1  # the row is locked: nobody moved it meanwhile
    work.record(rules.order_change(order.id))
    work.enqueue(order_mail_job(order.id, target.value))  # in this transaction: never lost
    return await rules.order_row(connection, order.id)


async def _refund(connection: AsyncConnection, gateway: PaymentGateway, order_id: int) -> None:
    """Refund every captured payment of the order in full, with its history step."""
    captured = (
        await connection.execute(
            select(payments).where(
                payments.c.order_id == order_id,
                payments.c.status == PaymentStatus.CAPTURED.value,
            )
        )
    ).all()
    for payment in captured:
        try:
            refunded = await gateway.refund(
                capture_id=payment.capture_ref,
                amount=payment.amount_minor,
                idempotency_key=f"refund:{payment.id}",
            )
        except GatewayError:
            raise rules.PaymentDeclined(
                "The refund could not be made now; try again", field="order_id"
            ) from None
        if isinstance(refunded, Declined):
            raise rules.PaymentDeclined(refunded.message, field="order_id")
        now = utcnow()
        await connection.execute(
            update(payments)
            .where(payments.c.id == payment.id)
            .values(status=PaymentStatus.REFUNDED.value)
        )
        await connection.execute(
            insert(payment_events).values(
                payment_id=payment.id,
                status=PaymentStatus.REFUNDED.value,
                gateway_ref=refunded.refund_id,
                amount_minor=payment.amount_minor,
                note=None,
                created_at=now,
            )
        )
