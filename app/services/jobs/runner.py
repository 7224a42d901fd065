"""Running one delivered job: claim its outbox row, run its body, complete or retry it.

Every task on the broker is "run job N": the row says what to do. A delivery of a job
that is done, failed, or leased by another worker is skipped (acknowledged, nothing
run), so a message delivered twice has its effect once. A body that raises puts the
job back with an exponential backoff (the relay sends it again when due); a worker
killed mid-job leaves the message unacknowledged and the lease running out, and the
job is delivered again (to another worker after `job_redelivery_seconds`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from taskiq import AsyncBroker

from app.db.outbox import claim, complete, retry_later
from app.platform.jobs import task_name
from app.platform.mail import MailError
from app.services.jobs.capture import capture_payment
from app.services.jobs.cleanup import clean_up
from app.services.jobs.context import JobContext, JobRun
from app.services.jobs.order_mail import send_order_mail
from app.services.jobs.requests import CAPTURE_PAYMENT, CLEAN_UP, LOW_STOCK_ALERT, ORDER_MAIL
from app.services.jobs.stock_alerts import send_low_stock_alert

logger = structlog.get_logger("shopgraph.jobs")

JobBody = Callable[[JobContext, dict[str, Any], JobRun], Awaitable[None]]
JOB_BODIES: Mapping[str, JobBody] = {
    CAPTURE_PAYMENT: capture_payment,
    ORDER_MAIL: send_order_mail,
    LOW_STOCK_ALERT: send_low_stock_alert,
    CLEAN_UP: clean_up,
}


async def run_job(context: JobContext, job_id: int) -> None:
    """Run outbox job `job_id` once if it is due and not leased; never raises for its failure."""
    settings = context.settings
    claimed = await claim(context.db.engine, job_id, lease_seconds=settings.job_lease_seconds)
    if claimed is None:
        logger.info("job skipped: done, failed or running elsewhere", job_id=job_id)
        return
    name, payload, attempt = claimed
    body = JOB_BODIES.get(name)
    started = time.monotonic()
    try:
        if body is None:
            raise LookupError(f"no job body named {name!r}")
        # Within the lease: past it another worker may start the same job.
        run = JobRun(job_id, attempt, last=attempt >= settings.job_max_attempts)
        await asyncio.wait_for(body(context, payload, run), timeout=settings.job_lease_seconds)
    except Exception as error:
        final = isinstance(error, LookupError | MailError) and not getattr(
            error, "transient", False
        )
        delay = await retry_later(
            context.db.engine,
            job_id,
            attempt=settings.job_max_attempts if final else attempt,
            error=f"{type(error).__name__}: {error}",
            max_attempts=settings.job_max_attempts,
            base_seconds=settings.job_backoff_seconds,
            cap_seconds=settings.job_backoff_max_seconds,
        )
        log = logger.warning if delay is not None else logger.error
        log("job failed", job=name, job_id=job_id, attempt=attempt, retry_in=delay,
            error=str(error))  # fmt: skip
        return
    await complete(context.db.engine, job_id)
    logger.info("job done", job=name, job_id=job_id, attempt=attempt,
                ms=round((time.monotonic() - started) * 1000))  # fmt: skip


def register_jobs(broker: AsyncBroker, context: JobContext) -> None:
    """One task per job name on the broker, each running `run_job` with this context."""

    for name in JOB_BODIES:

        async def run(job_id: int) -> None:
            await run_job(context, job_id)

        broker.register_task(run, task_name=task_name(name))


__all__ = ["JOB_BODIES", "register_jobs", "run_job"]
