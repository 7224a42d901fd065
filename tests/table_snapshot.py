"""Before/after snapshots of every table: proof that a refused request wrote nothing.

    before = await snapshot_tables(db)
    ...  # the refused request
    assert_unchanged(before, await snapshot_tables(db))

Every table of the models is read (new tables are covered as they are added), each row
as a tuple in primary-key order, so an inserted, deleted or changed row anywhere shows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import Database
from app.models import Base

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot_tables(db: Database) -> Snapshot:
    """Every row of every table, by table name."""
    taken: Snapshot = {}
    async with db.read() as connection:
        for table in Base.metadata.sorted_tables:
            rows = await connection.execute(select(table).order_by(*table.primary_key.columns))
            taken[table.name] = [tuple(row) for row in rows]
    return taken


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    """The names of the tables whose rows differ between two snapshots."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def assert_unchanged(before: Snapshot, after: Snapshot, what: str = "") -> None:
    """Fail naming the tables that changed, if any did."""
    changed = changed_tables(before, after)
    assert not changed, (
        f"{what}: tables changed: {changed}" if what else f"tables changed: {changed}"
    )
