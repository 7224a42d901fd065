"""Order mails: the confirmation once the payment is captured, and a mail per status change.

Each is one job (key `order-mail:<order id>:<kind>`) that reads the order as it is when the
job runs and sends a plain-text and an HTML body with its lines and totals. The
Message-ID is stable per order and kind: a job delivered or retried twice sends the same
mail (the outbox keeps one file of it; SMTP sees the same Message-ID).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from sqlalchemy import Row, select

from app.models import OrderStatus
from app.platform.crypto import DataCipher
from app.platform.mail import Mail, build_message, message_id, sender_domain
from app.platform.money import to_decimal
from app.platform.sealed_users import OpenedUser
from app.services.accounts.rules import users
from app.services.jobs.context import JobContext, JobRun
from app.services.jobs.requests import CONFIRMATION
from app.services.orders.rules import order_lines, orders

_SUBJECTS = {
    CONFIRMATION: "Your order {number} is confirmed",
    OrderStatus.PENDING_PAYMENT: "Order {number} awaits its payment",
    OrderStatus.PAID: "Payment received for order {number}",
    OrderStatus.FULFILLED: "Order {number} is being packed",
    OrderStatus.SHIPPED: "Order {number} has shipped",
    OrderStatus.DELIVERED: "Order {number} was delivered",
    OrderStatus.CANCELLED: "Order {number} was cancelled",
    OrderStatus.REFUNDED: "Order {number} was refunded",
    OrderStatus.PAYMENT_FAILED: "Payment failed for order {number}",
}


async def send_order_mail(context: JobContext, payload: dict[str, Any], run: JobRun) -> None:
    """Mail the order's customer (nothing when the order or its customer is gone)."""
    order_id, kind = int(payload["order_id"]), str(payload["kind"])
    async with context.db.read() as connection:
        order = (
            await connection.execute(
                select(orders, users.c.email, users.c.full_name)
                .join(users, users.c.id == orders.c.user_id)
                .where(orders.c.id == order_id)
            )
        ).first()
        if order is None:
            return
        # Mailed to the customer's current email, opened from the sealed users row.
        opened = OpenedUser(DataCipher.from_settings(context.settings), order)
        lines = (
            await connection.execute(
                select(order_lines)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.id)
            )
        ).all()
    settings = context.settings
    mail = render_order_mail(opened, lines, kind=kind, domain=sender_domain(settings.mail_from))
    await context.mail.send(build_message(mail, mail_from=settings.mail_from))


def render_order_mail(
    order: Row[Any] | OpenedUser, lines: Sequence[Row[Any]], *, kind: str, domain: str
) -> Mail:
    """The mail of one order: subject by kind, the lines and totals in text and HTML."""
    currency = order.currency

    def money(minor: int) -> str:
        return f"{to_decimal(minor, currency):,} {currency}"

    headline = _SUBJECTS[kind].format(number=order.number)
    status = f"Status: {order.status}"
    rows = [
        (f"{line.product_name} ({line.variant_name}, {line.sku})", line.quantity,
         money(line.unit_price_minor), money(line.unit_price_minor * line.quantity))
        for line in lines
    ]  # fmt: skip
    totals = [
        ("Subtotal", money(order.subtotal_minor)),
        ("Shipping", money(order.shipping_minor)),
        ("Total", money(order.total_minor)),
    ]
    text = "\n".join(
        [f"Hello {order.full_name},", "", headline + ".", status, ""]
        + [f"{qty} x {what} at {unit}: {total}" for what, qty, unit, total in rows]
        + [""]
        + [f"{label}: {value}" for label, value in totals]
        + ["", "Thank you for shopping with us."]
    )
    html = (
        f"<html><body><p>Hello {escape(order.full_name)},</p>"
        f"<p>{escape(headline)}.<br>{escape(status)}</p>"
        "<table><tr><th>Item</th><th>Quantity</th><th>Unit price</th><th>Total</th></tr>"
        + "".join(
            f"<tr><td>{escape(what)}</td><td>{qty}</td><td>{escape(unit)}</td>"
            f"<td>{escape(total)}</td></tr>"
            for what, qty, unit, total in rows
        )
        + "".join(
            f'<tr><td colspan="3">{label}</td><td>{escape(value)}</td></tr>'
            for label, value in totals
        )
        + "</table><p>Thank you for shopping with us.</p></body></html>"
    )
    return Mail(
        message_id=message_id("order", order.id, kind, domain=domain),
        to=(order.email,),
        subject=headline,
        text=text,
        html=html,
    )
