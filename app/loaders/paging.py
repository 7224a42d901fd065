"""Keyset paging over SQLAlchemy Core selects, for one list or many lists at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Integer, Row, Select, func, literal, select, tuple_

from app.platform.pagination import Cursor, CursorSort, PageRequest, SortValue

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows and whether more exist on either side."""

    rows: list[T]
    has_next: bool
    has_previous: bool


@dataclass(frozen=True, slots=True)
class KeysetOrder:
    """A sort key with the id as tie-breaker, in one direction."""

    key: ColumnElement[Any]
    id_column: ColumnElement[int]
    descending: bool

    def _past(self, cursor: Cursor, *, ahead: bool) -> ColumnElement[bool]:
        row = tuple_(self.key, self.id_column)
        bound = tuple_(literal(cursor.value, self.key.type), literal(cursor.id, Integer()))
        return row > bound if ahead != self.descending else row < bound

    def conditions(self, page: PageRequest) -> list[ColumnElement[bool]]:
        """WHERE terms that keep rows strictly between `after` and `before`."""
        terms = []
        if page.after is not None:
            terms.append(self._past(page.after, ahead=True))
        if page.before is not None:
            terms.append(self._past(page.before, ahead=False))
        return terms

    def order_by(self, page: PageRequest) -> list[ColumnElement[Any]]:
        """ORDER BY terms: the sort direction, reversed when paging backwards."""
        descending = self.descending != (not page.forward)
        if descending:
            return [self.key.desc(), self.id_column.desc()]
        return [self.key.asc(), self.id_column.asc()]


def single_page_select(stmt: Select[Any], order: KeysetOrder, page: PageRequest) -> Select[Any]:
    """`stmt` narrowed to one page (plus one row that tells whether more exist)."""
    return stmt.where(*order.conditions(page)).order_by(*order.order_by(page)).limit(page.limit + 1)


def partitioned_page_select(
    stmt: Select[Any], partition: ColumnElement[Any], order: KeysetOrder, page: PageRequest
) -> Select[Any]:
    """One page per partition value in a single statement (ROW_NUMBER window)."""
    row_number = (
        func.row_number()
        .over(partition_by=partition, order_by=order.order_by(page))
        .label("page_row_number")
    )
    inner = stmt.where(*order.conditions(page)).add_columns(row_number).subquery("paged")
    return (
        select(inner)
        .where(inner.c.page_row_number <= page.limit + 1)
        .order_by(inner.c[partition.name], inner.c.page_row_number)
    )


def to_page(rows: Sequence[T], page: PageRequest) -> Page[T]:
    """Trim the look-ahead row and put a backward page back in sort order."""
    has_more = len(rows) > page.limit
    kept = list(rows[: page.limit])
    if page.forward:
        return Page(rows=kept, has_next=has_more, has_previous=page.after is not None)
    kept.reverse()
    return Page(rows=kept, has_next=page.before is not None, has_previous=has_more)


def group_pages(
    rows: Sequence[Row[Any]], partition_of: Callable[[Row[Any]], Any], page: PageRequest
) -> dict[Any, Page[Row[Any]]]:
    """Split a partitioned result into one page per partition value."""
    grouped: dict[Any, list[Row[Any]]] = {}
    for row in rows:
        grouped.setdefault(partition_of(row), []).append(row)
    return {key: to_page(group, page) for key, group in grouped.items()}


def cursor_for(sort: CursorSort, value: SortValue, row_id: int) -> str:
    """The opaque cursor of a row."""
    return Cursor(sort=sort.name, value=value, id=row_id).encode()
