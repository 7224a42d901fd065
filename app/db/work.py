"""Units of work: a service's transaction, the changes it records, and what runs after commit.

    async with db.unit_of_work() as work:
        row = (await work.connection.execute(update(products)...)).one()
        work.record(Change("Product", row.id), Change.listing("Product"))

Jobs a unit of work `enqueue`s (app/platform/jobs.JobRequest) are written to the job
outbox on its connection just before the commit (app/db/outbox.py), and `jobs_committed`
(the outbox relay's kick) is told after it.

The changes go to `after_commit` (cache invalidation, then the change bus; wired by
app/main.py) only once the transaction has committed: an exception inside the block rolls
back and publishes nothing. Forgetting to record is caught: every INSERT, UPDATE or DELETE
on a table whose rows are cached is noted, and a unit of work that wrote such a table
without recording a change of its entity refuses to commit (UnrecordedWrite), so the
first test that runs the service fails.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.outbox import write_jobs
from app.platform.events import Change
from app.platform.jobs import JobRequest

AfterCommit = Callable[[Sequence[Change]], Awaitable[None]]
JobsCommitted = Callable[[], None]

# Tables whose rows the caches keep, and the entity whose change a write to them needs;
# carts and orders too: never cached (viewer data), but what follows them (jobs, subscriptions) must hear.
CACHED_TABLES: dict[str, str] = {
    "categories": "Category",
    "products": "Product",
    "product_variants": "ProductVariant",
    "product_images": "Product",  # images are cached per product
    "reviews": "Review",
    "users": "User",
    "carts": "Cart",
    "cart_lines": "Cart",
    # orders likewise (viewer data, never cached): every write of an order's rows is its change
    "orders": "Order",
    "order_lines": "Order",
    "payments": "Order",
    "payment_events": "Order",
    "checkout_keys": "Order",
}
# A statement run with this execution option writes nothing (a row lock on SQLite).
NOT_A_WRITE = "shopgraph_not_a_write"


class UnrecordedWrite(RuntimeError):
    """A unit of work wrote a cached table without recording a change of its entity."""


@dataclass(eq=False)
class UnitOfWork:
    """One transaction: its connection, the changes recorded in it, the cached tables it wrote."""

    connection: AsyncConnection
    changes: list[Change] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    jobs: list[JobRequest] = field(default_factory=list)

    def record(self, *changes: Change) -> None:
        """Note what this transaction changes; published after it commits."""
        self.changes.extend(changes)

    def enqueue(self, *jobs: JobRequest) -> None:
        """Ask for jobs: written to the outbox in this transaction, run after it commits."""
        self.jobs.extend(jobs)

    def check(self) -> None:
        """Refuse to commit a write to a cached table whose entity recorded no change."""
        recorded = {change.entity for change in self.changes}
        missing = sorted(table for table in self.written if CACHED_TABLES[table] not in recorded)
        if missing:
            raise UnrecordedWrite(
                f"wrote {', '.join(missing)} without recording a change of "
                f"{', '.join(sorted({CACHED_TABLES[t] for t in missing}))} (UnitOfWork.record)"
            )


_current: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar(
    "shopgraph_unit_of_work", default=None
)


def note_write(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """before_cursor_execute on the write engine: note a write to a cached table."""
    work = _current.get()
    if work is None or context is None:
        return
    if not (context.isinsert or context.isupdate or context.isdelete):
        return
    if context.execution_options.get(NOT_A_WRITE):
        return
    table = getattr(getattr(context.compiled, "statement", None), "table", None)
    name = getattr(table, "name", None)
    if name in CACHED_TABLES:
        work.written.add(name)


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine,
    after_commit: AfterCommit | None,
    jobs_committed: JobsCommitted | None = None,
) -> AsyncIterator[UnitOfWork]:
    """A transaction whose recorded changes go to `after_commit` once it has committed."""
    async with engine.connect() as connection:
        work = UnitOfWork(connection)
        token = _current.set(work)
        try:
            async with connection.begin():
                yield work
                work.check()
                if work.jobs:
                    await write_jobs(connection, work.jobs)
        finally:
            _current.reset(token)
    if work.jobs and jobs_committed is not None:
        jobs_committed()
    if work.changes and after_commit is not None:
        await after_commit(tuple(work.changes))


__all__ = [
    "CACHED_TABLES",
    "NOT_A_WRITE",
    "AfterCommit",
    "UnitOfWork",
    "UnrecordedWrite",
    "note_write",
    "unit_of_work",
]
