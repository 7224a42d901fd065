"""Payment capture, as a job: checkout authorizes, this takes the money and makes the order PAID.

One unit of work locks the order (a cancel meanwhile and this capture queue one behind the
other), and captures only an AUTHORIZED payment of a PENDING_PAYMENT order: run again
after it succeeded, or after the order was cancelled, it does nothing. The gateway call
carries `capture:<payment id>` as idempotency key, so a retried capture is the same
capture at the gateway.

- Captured: the payment CAPTURED, the order PAID, and the confirmation mail asked for.
- Transient failure (`tok_transient`'s first attempt): a FAILED step in the payment's
  history is kept, and the job is retried with backoff; on its last attempt the payment
  FAILED and the order PAYMENT_FAILED, its stock back.
- Declined: the payment DECLINED, the order PAYMENT_FAILED, its stock back, and the
  customer mailed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select, update

from app.db.work import UnitOfWork
from app.models import OrderStatus, PaymentStatus
from app.models.base import utcnow
from app.services.catalog.variants import variant_changes
from app.services.jobs.context import JobContext, JobRun
from app.services.jobs.requests import CONFIRMATION, order_mail_job
from app.services.locking import lock_owner
from app.services.orders import rules
from app.services.orders.rules import order_lines, orders, payment_events, payments, variants
from app.services.payments.gateway import Capture, Declined, TransientGatewayError


async def capture_payment(context: JobContext, payload: dict[str, Any], run: JobRun) -> None:
    """Capture the payment `payload["payment_id"]` (see the module's docstring)."""
    payment_id = int(payload["payment_id"])
    retry = False
    async with context.db.unit_of_work() as work:
        connection = work.connection
        order_id = (
            await connection.execute(select(payments.c.order_id).where(payments.c.id == payment_id))
        ).scalar_one_or_none()
        order = None if order_id is None else await lock_owner(connection, orders, order_id)
        if order is None or order.status != OrderStatus.PENDING_PAYMENT.value:
            return  # gone, cancelled, or captured by an earlier delivery
        payment = (
            await connection.execute(select(payments).where(payments.c.id == payment_id))
        ).one()
        if payment.status != PaymentStatus.AUTHORIZED.value:
            return
        try:
            captured = await context.gateway.capture(
                authorization_id=payment.authorization_ref,
                amount=payment.amount_minor,
                idempotency_key=f"capture:{payment_id}",
            )
        except TransientGatewayError as error:
            await _step(work, payment, PaymentStatus.FAILED, note=f"capture failed: {error}"[:200])
            if not run.last:
                retry = True
            else:
                await _payment_failed(work, order, payment, PaymentStatus.FAILED)
        else:
            if isinstance(captured, Declined):
                await _step(work, payment, PaymentStatus.DECLINED, note=captured.message[:200])
                await _payment_failed(work, order, payment, PaymentStatus.DECLINED)
            else:
                await _paid(work, order, payment, captured)
    if retry:  # after the commit: the FAILED step stays in the history
        raise TransientGatewayError("the capture failed transiently; retried with backoff")


async def _step(
    work: UnitOfWork,
    payment: Row[Any],
    status: PaymentStatus,
    *,
    ref: str | None = None,
    note: str | None = None,
) -> None:
    await work.connection.execute(
        insert(payment_events).values(
            payment_id=payment.id, status=status.value, gateway_ref=ref,
            amount_minor=payment.amount_minor, note=note, created_at=utcnow(),
        )
    )  # fmt: skip
    work.record(rules.order_change(payment.order_id))


async def _set_order(work: UnitOfWork, order: Row[Any], status: OrderStatus) -> None:
    changed = await work.connection.execute(
        update(orders)
        .where(orders.c.id == order.id, orders.c.status == OrderStatus.PENDING_PAYMENT.value)
        .values(status=status.value, updated_at=utcnow())
    )
    assert changed.rowcount == 1  # the row is locked
    work.record(rules.order_change(order.id))


async def _paid(work: UnitOfWork, order: Row[Any], payment: Row[Any], captured: Capture) -> None:
    await work.connection.execute(
        update(payments)
        .where(payments.c.id == payment.id)
        .values(status=PaymentStatus.CAPTURED.value, capture_ref=captured.capture_id)
    )
    await _step(work, payment, PaymentStatus.CAPTURED, ref=captured.capture_id)
    await _set_order(work, order, OrderStatus.PAID)
    work.enqueue(order_mail_job(order.id, CONFIRMATION))


async def _payment_failed(
    work: UnitOfWork, order: Row[Any], payment: Row[Any], status: PaymentStatus
) -> None:
    """The payment failed for good: PAYMENT_FAILED, and the reserved stock goes back."""
    connection = work.connection
    await connection.execute(
        update(payments).where(payments.c.id == payment.id).values(status=status.value)
    )
    lines = (
        await connection.execute(
            select(order_lines.c.variant_id, order_lines.c.quantity, variants.c.product_id)
            .join(variants, variants.c.id == order_lines.c.variant_id)
            .where(order_lines.c.order_id == order.id)
            .order_by(order_lines.c.variant_id)
        )
    ).all()
    for line in lines:
        await connection.execute(
            update(variants)
            .where(variants.c.id == line.variant_id)
            .values(stock=variants.c.stock + line.quantity)
        )
        work.record(*variant_changes(line.variant_id, line.product_id))
    await _set_order(work, order, OrderStatus.PAYMENT_FAILED)
    work.enqueue(order_mail_job(order.id, OrderStatus.PAYMENT_FAILED.value))
