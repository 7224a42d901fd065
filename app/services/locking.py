"""Row locks for count-limited inserts, on both backends.

A count check followed by an insert is a race unless writers for the same owner are
serialized: PostgreSQL locks the owner's row (`SELECT ... FOR UPDATE`); SQLite ignores
FOR UPDATE and starts its transaction only at the first write, so there a no-op
UPDATE of the owner's row takes the database write lock before the count is read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.work import NOT_A_WRITE


async def lock_owner(connection: AsyncConnection, table: Table, row_id: int) -> Row[Any] | None:
    """The owner row locked until commit (None if it does not exist); call it first in the transaction."""
    if connection.dialect.name == "sqlite":
        # Every column to itself: `onupdate` defaults (updated_at) must not fire on a lock.
        unchanged = {column.name: column for column in table.c if column.onupdate is not None}
        unchanged["id"] = table.c.id
        await connection.execute(
            update(table)
            .where(table.c.id == row_id)
            .values(unchanged)
            .execution_options(**{NOT_A_WRITE: True})
        )
    stmt = select(table).where(table.c.id == row_id).with_for_update()
    return (await connection.execute(stmt)).first()
