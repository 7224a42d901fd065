"""The job outbox: jobs written with their cause's transaction, relayed to the broker after it.

A unit of work's `enqueue`d jobs are inserted on its own connection just before it
commits (app/db/work.py): a rolled-back change leaves no job, a committed one always has
its job, whether or not Redis answers at that moment. The `OutboxRelay` sends due rows to
the broker right after such a commit and every `outbox_relay_interval_seconds`, so rows
written while the broker was unreachable go out once it is back.

A job's state stays in its row: a worker `claim`s it (a lease: no second worker starts
it meanwhile), then `complete`s it, or `retry_later` puts it back with a backoff (after
its last attempt it is failed and logged). A delivery of a job that is done, failed or
leased elsewhere is skipped: a job delivered twice runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, cast

import orjson
import structlog
from sqlalchemy import Row, Select, Table, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.models.base import utcnow
from app.models.jobs import OutboxJob
from app.platform.jobs import JobRequest, UnknownJob, backoff_seconds

logger = structlog.get_logger("shopgraph.jobs")

jobs = cast("Table", OutboxJob.__table__)
Send = Callable[[str, int], Awaitable[None]]  # (job name, job id) onto the broker
RELAY_BATCH = 100


async def write_jobs(connection: AsyncConnection, requests: Sequence[JobRequest]) -> None:
    """Insert the jobs (a key already there is the same job: skipped) in this transaction."""
    now = utcnow()
    rows = [
        {"name": job.name, "key": job.key, "payload": orjson.dumps(dict(job.payload)).decode(),
         "created_at": now, "available_at": now, "attempts": 0}
        for job in requests
    ]  # fmt: skip
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    await connection.execute(insert(jobs).on_conflict_do_nothing(index_elements=["key"]), rows)


async def claim(
    engine: AsyncEngine, job_id: int, *, lease_seconds: float
) -> tuple[str, dict[str, Any], int] | None:
    """Lease a due job for this worker: (name, payload, attempt), or None to skip it."""
    now = utcnow()
    async with engine.begin() as connection:
        taken = await connection.execute(
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.completed_at.is_(None),
                jobs.c.failed_at.is_(None),
                or_(jobs.c.locked_until.is_(None), jobs.c.locked_until < now),
            )
            .values(
                locked_until=now + timedelta(seconds=lease_seconds),
                attempts=jobs.c.attempts + 1,
            )
            .returning(jobs.c.name, jobs.c.payload, jobs.c.attempts)
        )
        row = taken.first()
    if row is None:
        return None
    return row.name, orjson.loads(row.payload), row.attempts


async def complete(engine: AsyncEngine, job_id: int) -> None:
    """Mark a job done (its effect committed: a delivery after this skips it)."""
    async with engine.begin() as connection:
        await connection.execute(
            update(jobs).where(jobs.c.id == job_id).values(completed_at=utcnow(), locked_until=None)
        )


async def retry_later(
    engine: AsyncEngine,
    job_id: int,
    *,
    attempt: int,
    error: str,
    max_attempts: int,
    base_seconds: float,
    cap_seconds: float,
) -> float | None:
    """Put a failed job back, due after a backoff (seconds returned); None: failed for good."""
    now = utcnow()
    values: dict[str, Any] = {"locked_until": None, "last_error": error[:500]}
    delay: float | None = None
    if attempt >= max_attempts:
        values["failed_at"] = now
    else:
        delay = backoff_seconds(attempt, base=base_seconds, cap=cap_seconds)
        values.update(available_at=now + timedelta(seconds=delay), relayed_at=None)
    async with engine.begin() as connection:
        await connection.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
    return delay


class OutboxRelay:
    """Sends due outbox rows to the broker: when kicked (after a commit) and periodically."""

    def __init__(
        self,
        engine: AsyncEngine,
        send: Send,
        *,
        interval_seconds: float,
        redelivery_seconds: float,
        backoff_base_seconds: float,
        backoff_cap_seconds: float,
    ) -> None:
        self._engine = engine
        self._send = send
        self._interval = interval_seconds
        # The broker gives an unacknowledged message to another worker after
        # `redelivery_seconds`; the relay sends a job again only after twice that (a lost message).
        self._redelivery = timedelta(seconds=2 * redelivery_seconds)
        self._backoff = (backoff_base_seconds, backoff_cap_seconds)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._failures = 0  # broker failures in a row (the relay backs off)

    def kick(self) -> None:
        """Relay soon (a unit of work committed jobs); never blocks the caller."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Send every due job once; the number sent (stops at the first broker failure)."""
        async with self._lock:
            sent = 0
            while True:
                batch = await self._due()
                for row in batch:
                    try:
                        await self._send(row.name, row.id)
                    except UnknownJob as error:  # never runnable: failed, the others go on
                        await self._fail(row.id, str(error))
                        continue
                    except Exception as error:  # the broker is down: the rows wait
                        self._failures += 1
                        logger.warning(
                            "jobs not relayed; retried later", error=str(error), job_id=row.id
                        )
                        return sent
                    async with self._engine.begin() as connection:
                        await connection.execute(
                            update(jobs).where(jobs.c.id == row.id).values(relayed_at=utcnow())
                        )
                    sent += 1
                self._failures = 0
                if len(batch) < RELAY_BATCH:
                    return sent

    async def _fail(self, job_id: int, error: str) -> None:
        logger.error("job failed: unknown job", job_id=job_id, error=error)
        async with self._engine.begin() as connection:
            await connection.execute(
                update(jobs).where(jobs.c.id == job_id).values(failed_at=utcnow(), last_error=error)
            )

    async def _due(self) -> Sequence[Row[Any]]:
        now = utcnow()
        stmt: Select[Any] = (
            select(jobs.c.id, jobs.c.name)
            .where(
                jobs.c.completed_at.is_(None),
                jobs.c.failed_at.is_(None),
                jobs.c.available_at <= now,
                # never sent, or sent long ago and still not done (the message was lost)
                or_(jobs.c.relayed_at.is_(None), jobs.c.relayed_at < now - self._redelivery),
                or_(jobs.c.locked_until.is_(None), jobs.c.locked_until < now),
            )
            .order_by(jobs.c.id)
            .limit(RELAY_BATCH)
        )
        async with self._engine.connect() as connection:
            rows: Sequence[Row[Any]] = (await connection.execute(stmt)).all()
        return rows

    async def run(self) -> None:
        """Relay when kicked and every interval, until cancelled."""
        while True:
            try:
                await self.relay_once()
            except Exception:  # the database is down: try again next round
                logger.exception("outbox relay failed")
            wait = self._interval
            if self._failures:
                wait = min(
                    wait,
                    backoff_seconds(self._failures, base=self._backoff[0], cap=self._backoff[1]),
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # (wait_for would run it as another task)
                    await self._wake.wait()
            self._wake.clear()


def pending_condition() -> Any:
    """Jobs not done nor failed (for tests and the clean-up of finished rows)."""
    return and_(jobs.c.completed_at.is_(None), jobs.c.failed_at.is_(None))


__all__ = [
    "OutboxRelay",
    "claim",
    "complete",
    "jobs",
    "pending_condition",
    "retry_later",
    "write_jobs",
]
