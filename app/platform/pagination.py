"""Cursor pagination arguments: validation, page-size caps and opaque cursors.

A cursor carries the sort it belongs to, the row's sort value and its id, so the
next page is a keyset query (`WHERE (key, id) > (value, id)`), stable under inserts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.platform.errors import InvalidInput
from app.platform.global_ids import MAX_PK

SortValue = str | int | float | datetime | None


@dataclass(frozen=True, slots=True)
class CursorSort:
    """A sort order as cursors know it: its name, and the type of its sort values."""

    name: str
    value_type: type[str] | type[int] | type[float] | type[datetime]

    def accepts(self, value: object) -> bool:
        """Whether a decoded cursor value can be compared with this sort's key."""
        if isinstance(value, bool):
            return False
        if self.value_type is float:
            return isinstance(value, int | float)
        if self.value_type is int:
            return isinstance(value, int) and -(2**31) <= value <= MAX_PK
        return isinstance(value, self.value_type)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A decoded cursor: which sort, the sort value of the row, and its id."""

    sort: str
    value: SortValue
    id: int

    def encode(self) -> str:
        """Opaque text form of this cursor."""
        value: Any = self.value
        kind = "s"
        if isinstance(value, datetime):
            value, kind = value.isoformat(), "t"
        raw = orjson.dumps([self.sort, kind, value, self.id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, sort: CursorSort) -> Cursor:
        """Parse a cursor given by a client for a connection sorted by `sort`."""
        try:
            padded = text + "=" * (-len(text) % 4)
            raw = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            cursor_sort, kind, value, row_id = raw
            if kind == "t":
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError("naive time")
                # Columns store UTC: a time whose UTC form leaves years 1-9999 (e.g.
                # 9999-12-31T23:59:59-14:00) would overflow when bound as a parameter.
                value = value.astimezone(UTC)
            elif not isinstance(value, str | int | float | None) or isinstance(value, bool):
                raise ValueError("bad value")
            elif isinstance(value, str) and "\x00" in value:
                raise ValueError("NUL in a text value")  # no column can hold it
            if not isinstance(row_id, int) or isinstance(row_id, bool) or not 1 <= row_id <= MAX_PK:
                raise ValueError("bad id")
        except (
            ValueError,
            TypeError,
            OverflowError,
            UnicodeError,
            binascii.Error,
            orjson.JSONDecodeError,
        ):
            raise InvalidInput(f"Malformed cursor {text[:80]!r}") from None
        if cursor_sort != sort.name:
            raise InvalidInput(
                f"Cursor {text[:80]!r} belongs to another sort order; request the first page again"
            )
        if not sort.accepts(value):
            raise InvalidInput(f"Malformed cursor {text[:80]!r}")
        if sort.value_type is float and isinstance(value, int):
            value = float(value)  # a float column's parameter: never a 64-bit-overflowing int
        return cls(sort=cursor_sort, value=value, id=row_id)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Validated `first/after/last/before`: how many rows, which way, from where."""

    limit: int
    forward: bool
    after: Cursor | None = None
    before: Cursor | None = None


def page_request(
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    sort: CursorSort,
    default_size: int,
    max_size: int,
) -> PageRequest:
    """Check connection arguments and cap the page size; raise InvalidInput on bad ones."""
    if first is not None and last is not None:
        raise InvalidInput("Pass either `first` or `last`, not both")
    for name, size in (("first", first), ("last", last)):
        if size is not None and size < 0:
            raise InvalidInput(f"`{name}` must not be negative")
        if size is not None and size > max_size:
            raise InvalidInput(f"`{name}` must be at most {max_size} (the page size cap)")
    after_cursor = Cursor.decode(after, sort=sort) if after is not None else None
    before_cursor = Cursor.decode(before, sort=sort) if before is not None else None
    if last is not None:
        return PageRequest(limit=last, forward=False, after=after_cursor, before=before_cursor)
    return PageRequest(
        limit=default_size if first is None else first,
        forward=True,
        after=after_cursor,
        before=before_cursor,
    )
