"""Key rotation: every sealed column re-encrypted to the current DATA_KEY_ID, in small batches.

Readers keep working throughout: the old keys stay in DATA_KEYS, so a row opens whether
it was re-sealed yet or not, and writers already seal with the current key. Each batch
is its own short transaction (keyset-paged by id, only rows holding a value of another
key), and each row is written only if its sealed values are still the ones read: a row a
customer changed meanwhile was sealed with the current key by that write and is left
alone. Stopped half-way, a second run takes only the rows still left: it is resumable
and idempotent. Rows of tables whose writes are entity changes (orders) record their
change, as every write must (app/db/work.py), though no plaintext changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, TableClause, and_, column, or_, select, table, update

from app.db import Database
from app.db.work import CACHED_TABLES
from app.platform.crypto import CryptoError, DataCipher, UnknownKeyId
from app.platform.errors import DomainError
from app.platform.events import Change
from app.platform.sealed_addresses import SEALED_COLUMNS, column_context

DEFAULT_BATCH_SIZE = 200
MAX_BATCH_SIZE = 10_000
# A row changed between its batch's read and write is left for the next pass; a few
# passes settle any table (each pass only sees rows still sealed with an old key).
MAX_PASSES = 5


class RotationError(DomainError):
    """The rotation cannot go on; rows done so far stay done."""


@dataclass(frozen=True, slots=True)
class TableRotation:
    """What the rotation did to one table."""

    table: str
    rotated: int  # rows re-sealed with the current key
    left: int  # rows still holding a value of an older key (0 when done)


def check_target(cipher: DataCipher, key_id: str | None) -> str:
    """The key id rows are re-sealed with: the current one (RotationError for any other)."""
    current = cipher.current_key_id
    if key_id is None or key_id == current:
        return current
    if key_id not in cipher.key_ids:
        known = ", ".join(cipher.key_ids)
        raise RotationError(
            f"key id {key_id!r} is not in SHOPGRAPH_DATA_KEYS (configured: {known})"
        )
    raise RotationError(
        f"key id {key_id!r} is not SHOPGRAPH_DATA_KEY_ID ({current!r}): set "
        f"SHOPGRAPH_DATA_KEY_ID={key_id} for every server first, so new values use it too"
    )


def _sealed_table(name: str, columns: tuple[str, ...]) -> TableClause:
    return table(name, column("id"), *(column(c) for c in columns))


def _old_key(cipher: DataCipher, sealed: TableClause, columns: tuple[str, ...]) -> Any:
    prefix = f"sg1.{cipher.current_key_id}."
    return or_(*(and_(sealed.c[c].is_not(None), ~sealed.c[c].startswith(prefix)) for c in columns))


def _resealed(
    cipher: DataCipher, name: str, columns: tuple[str, ...], row: Row[Any]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for col in columns:
        value = getattr(row, col)
        if value is None or not cipher.needs_rotation(value):
            continue
        try:
            values[col] = cipher.reencrypt(value, context=column_context(name, col))
        except UnknownKeyId as error:
            raise RotationError(
                f"{name} row {row.id}, column {col}: sealed with key id {error.key_id!r}, "
                "which is not in SHOPGRAPH_DATA_KEYS; add that key back and run again"
            ) from None
        except CryptoError as error:
            raise RotationError(f"{name} row {row.id}, column {col}: {error}") from None
    return values


async def _pass(
    db: Database, cipher: DataCipher, name: str, columns: tuple[str, ...], batch_size: int
) -> int:
    """One keyset-paged pass over a table; the rows re-sealed."""
    sealed = _sealed_table(name, columns)
    needs = _old_key(cipher, sealed, columns)
    rotated, last = 0, 0
    while True:
        async with db.unit_of_work() as work:
            connection = work.connection
            rows = (
                await connection.execute(
                    select(sealed)
                    .where(sealed.c.id > last, needs)
                    .order_by(sealed.c.id)
                    .limit(batch_size)
                )
            ).all()
            for row in rows:
                values = _resealed(cipher, name, columns, row)
                unchanged: list[ColumnElement[bool]] = [
                    sealed.c[c] == getattr(row, c) for c in values
                ]
                done = await connection.execute(
                    update(sealed).where(sealed.c.id == row.id, *unchanged).values(**values)
                )
                rotated += done.rowcount
                if done.rowcount and name in CACHED_TABLES:
                    # A write of such a table is its entity's change (app/db/work.py), though
                    # no plaintext changed: listeners see a change that shows no difference.
                    work.record(Change(CACHED_TABLES[name], row.id))
        if len(rows) < batch_size:
            return rotated
        last = rows[-1].id


async def _left(db: Database, cipher: DataCipher, name: str, columns: tuple[str, ...]) -> int:
    sealed = _sealed_table(name, columns)
    async with db.read() as connection:
        found = await connection.execute(
            select(sealed.c.id).where(_old_key(cipher, sealed, columns))
        )
        return len(found.all())


async def rotate_keys(
    db: Database,
    *,
    cipher: DataCipher,
    batch_size: int = DEFAULT_BATCH_SIZE,
    tables: Mapping[str, tuple[str, ...]] = SEALED_COLUMNS,
    on_table: Callable[[TableRotation], None] | None = None,
) -> list[TableRotation]:
    """Re-seal every value of an older key with the current key, table by table."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise RotationError(f"the batch size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
    results = []
    for name, columns in tables.items():
        rotated, left = 0, 0
        for _ in range(MAX_PASSES):
            rotated += await _pass(db, cipher, name, columns, batch_size)
            left = await _left(db, cipher, name, columns)
            if left == 0:
                break
        result = TableRotation(table=name, rotated=rotated, left=left)
        if on_table is not None:
            on_table(result)
        results.append(result)
    return results


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "RotationError",
    "TableRotation",
    "check_target",
    "rotate_keys",
]
