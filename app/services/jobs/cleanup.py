"""Periodic clean-up: refresh tokens past their expiry, carts abandoned, finished outbox rows.

The worker (or, in the embedded mode, the server) enqueues these through the outbox once
per `cleanup_interval_seconds` slot, with the slot in the key: several processes asking
for the same slot make one job.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select

from app.db.outbox import jobs as outbox_jobs
from app.models.base import utcnow
from app.services.accounts.rules import refresh_tokens
from app.services.cart.rules import cart_change, carts
from app.services.jobs.context import JobContext, JobRun

# Finished outbox rows are kept this long (for the record), then deleted.
FINISHED_JOB_RETENTION = timedelta(days=7)


async def clean_up(context: JobContext, payload: dict[str, Any], run: JobRun) -> None:
    """Delete expired refresh tokens, abandoned carts and long-finished outbox rows."""
    now = utcnow()
    abandoned_before = now - timedelta(days=context.settings.abandoned_cart_days)
    async with context.db.unit_of_work() as work:
        connection = work.connection
        await connection.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < now))
        # A checkout's idempotency record keeps its cart's id without a foreign key (a retry
        # after the cart is gone answers from the record), so any old cart may go.
        stale = (
            (
                await connection.execute(
                    select(carts.c.id).where(carts.c.updated_at < abandoned_before)
                )
            )
            .scalars()
            .all()
        )
        if stale:
            await connection.execute(delete(carts).where(carts.c.id.in_(stale)))
            work.record(*(cart_change(cart_id) for cart_id in stale))
        await connection.execute(
            delete(outbox_jobs).where(
                or_(
                    outbox_jobs.c.completed_at < now - FINISHED_JOB_RETENTION,
                    outbox_jobs.c.failed_at < now - FINISHED_JOB_RETENTION,
                )
            )
        )
