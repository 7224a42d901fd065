"""Low-stock alerts: a checkout that takes a variant's stock to the threshold or below mails staff.

The alert is decided in the checkout's transaction (from the stock its conditional
UPDATE left) and written to the outbox there: one job per variant and order that
crossed the threshold (`low-stock:<variant id>:<order id>`), so later checkouts of a
variant already low do not alert again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.models import Role
from app.platform.crypto import DataCipher
from app.platform.mail import Mail, build_message, message_id, sender_domain
from app.platform.sealed_users import open_email
from app.services.accounts.rules import users
from app.services.jobs.context import JobContext, JobRun

STAFF_ROLES = (Role.STAFF, Role.ADMIN)


async def send_low_stock_alert(context: JobContext, payload: dict[str, Any], run: JobRun) -> None:
    """Mail every staff member and admin that a variant runs low (nobody to tell: done)."""
    async with context.db.read() as connection:
        staff = (
            (
                await connection.execute(
                    select(users.c.email).where(users.c.role.in_(STAFF_ROLES)).order_by(users.c.id)
                )
            )
            .scalars()
            .all()
        )
    if not staff:
        return
    cipher = DataCipher.from_settings(context.settings)
    staff = [open_email(cipher, sealed) for sealed in staff]
    sku, stock = str(payload["sku"]), int(payload["stock"])
    threshold = context.settings.low_stock_threshold
    settings = context.settings
    subject = f"Low stock: {sku} has {stock} left"
    text = (
        f"The variant {sku} is down to {stock} units (alert threshold {threshold}) after "
        f"an order. Restock it with setStock."
    )
    html = (
        f"<p>The variant <b>{sku}</b> is down to <b>{stock}</b> units (threshold {threshold}).</p>"
    )
    mail = Mail(
        message_id=message_id(
            "low-stock", payload["variant_id"], payload["order_id"],
            domain=sender_domain(settings.mail_from),
        ),
        to=tuple(staff), subject=subject, text=text, html=html,
    )  # fmt: skip
    await context.mail.send(build_message(mail, mail_from=settings.mail_from))
