"""Background jobs of one process, wired from settings: broker, outbox relay, clean-up timer.

The server builds one in its lifespan (app/main.py) and `shopgraph worker` another
(app/cli.py). Every process that writes relays its outbox (right after a commit with jobs,
and periodically); the process that runs jobs also asks for the periodic clean-up.
Embedded mode: the in-process broker, jobs run in the server. Production: the Redis
stream broker, jobs run in `shopgraph worker` (or in the server too, JOBS_IN_PROCESS).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from app.db import Database
from app.db.outbox import OutboxRelay
from app.platform.jobs import build_broker, run_worker, send_job, wait_idle
from app.platform.mail import mail_sender
from app.services.jobs.context import JobContext
from app.services.jobs.requests import clean_up_job
from app.services.jobs.runner import register_jobs
from app.services.payments.gateway import PaymentGateway
from app.settings import Settings

logger = structlog.get_logger("shopgraph.jobs")
JOB_TASKS = "shopgraph-jobs:"  # the names of this module's background tasks start so


class BackgroundJobs:
    """The broker, relay and timers of one process; `start` and `stop` in its lifespan."""

    def __init__(self, settings: Settings, db: Database, gateway: PaymentGateway) -> None:
        self.settings = settings
        self.db = db
        self.broker = build_broker(settings)
        self.context = JobContext(
            db=db, settings=settings, mail=mail_sender(settings), gateway=gateway
        )
        register_jobs(self.broker, self.context)

        async def send(name: str, job_id: int) -> None:
            await send_job(self.broker, name=name, job_id=job_id)

        self.relay = OutboxRelay(
            db.engine,
            send,
            interval_seconds=settings.outbox_relay_interval_seconds,
            redelivery_seconds=settings.job_redelivery_seconds,
            backoff_base_seconds=settings.job_backoff_seconds,
            backoff_cap_seconds=settings.job_backoff_max_seconds,
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def relaying(self) -> bool:
        """Whether the relay runs here (`start` starts it first of its tasks, or none)."""
        return bool(self._tasks)

    async def start(self, *, run_jobs: bool) -> None:
        """Connect the broker and start the relay; with `run_jobs`, the receiver and clean-up."""
        if not run_jobs and self.settings.redis_url is None:
            # The in-process broker runs what it is sent: without jobs here, nothing is sent.
            return
        if run_jobs:
            self.broker.is_worker_process = True
        try:
            await self.broker.startup()
        except Exception as error:  # Redis down at start: the relay keeps trying
            logger.warning("job broker not reachable at start", error=str(error))
        self.db.jobs_committed = self.relay.kick
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{JOB_TASKS}relay"))
        if run_jobs:
            self._tasks.append(
                asyncio.create_task(self._clean_up_timer(), name=f"{JOB_TASKS}clean-up")
            )
            if self.settings.redis_url is not None:  # the in-process broker needs no receiver
                self._tasks.append(
                    asyncio.create_task(self._receive(), name=f"{JOB_TASKS}receiver")
                )

    async def _receive(self) -> None:
        while True:
            try:
                await run_worker(self.broker, concurrency=self.settings.job_concurrency)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis went away: listen again after a pause
                logger.warning("job receiver stopped; restarting", error=str(error))
                await asyncio.sleep(1.0)

    async def _clean_up_timer(self) -> None:
        interval = self.settings.cleanup_interval_seconds
        while True:
            slot = int(time.time() // interval)
            try:
                async with self.db.unit_of_work() as work:
                    work.enqueue(clean_up_job(slot))
            except Exception:
                logger.exception("clean-up not enqueued")
            await asyncio.sleep((slot + 1) * interval - time.time() + 0.01)

    async def stop(self) -> None:
        """Stop the timers and relay, let in-process jobs finish, close the broker."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(wait_idle(self.broker), timeout=10)
        with contextlib.suppress(Exception):
            await self.broker.shutdown()


async def run_worker_process(settings: Settings) -> None:
    """`shopgraph worker`: run jobs from the broker until cancelled (SIGTERM, Ctrl-C)."""
    from app.main import payment_gateway_for  # the server's choice of gateway, made once

    db = Database.from_settings(settings)
    jobs = BackgroundJobs(settings, db, payment_gateway_for(settings))
    await jobs.start(run_jobs=True)
    logger.info("worker started", broker=type(jobs.broker).__name__)
    try:
        await asyncio.Event().wait()
    finally:
        await jobs.stop()
        await db.dispose()
