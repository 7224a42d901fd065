"""The staff order listing: filtered by status, customer email (hash) and time, sorted, keyset-paged.

Like every order loader, these read no cache and name no cache tags: a response that
lists orders is never cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, func, select

from app.loaders.base import BatchLoader
from app.loaders.orders import orders
from app.loaders.paging import KeysetOrder, Page, single_page_select, to_page
from app.platform.pagination import CursorSort, PageRequest


class OrderSortField(StrEnum):
    """What the order listing can be sorted by."""

    CREATED_AT = "CREATED_AT"
    TOTAL = "TOTAL"


_KEYS: dict[OrderSortField, tuple[ColumnElement[Any], type[int] | type[datetime]]] = {
    OrderSortField.CREATED_AT: (orders.c.created_at, datetime),
    OrderSortField.TOTAL: (orders.c.total_minor, int),
}


@dataclass(frozen=True, slots=True)
class OrderFilterSpec:
    """A listing filter in storage terms (the email as its keyed search hash)."""

    status: str | None = None
    customer_email_hash: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderSortSpec:
    """A listing sort; cursors are only valid for the sort that made them."""

    field: OrderSortField = OrderSortField.CREATED_AT
    descending: bool = True

    @property
    def cursor_sort(self) -> CursorSort:
        """What a cursor carries to prove which sort it belongs to, and its value type."""
        direction = "desc" if self.descending else "asc"
        return CursorSort(
            name=f"orders:{self.field.value}:{direction}", value_type=_KEYS[self.field][1]
        )

    @property
    def keyset(self) -> KeysetOrder:
        """The keyset order of this sort (id as tie-breaker)."""
        return KeysetOrder(
            key=_KEYS[self.field][0], id_column=orders.c.id, descending=self.descending
        )

    def value_of(self, row: Row[Any]) -> Any:
        """A row's sort value, for its cursor."""
        return row.created_at if self.field is OrderSortField.CREATED_AT else row.total_minor


def _filtered(stmt: Select[Any], spec: OrderFilterSpec) -> Select[Any]:
    if spec.status is not None:
        stmt = stmt.where(orders.c.status == spec.status)
    if spec.customer_email_hash is not None:
        # The order's own copy of the email, searched by hash (no plaintext is stored).
        stmt = stmt.where(orders.c.email_hash == spec.customer_email_hash)
    if spec.created_after is not None:
        stmt = stmt.where(orders.c.created_at >= spec.created_after)
    if spec.created_before is not None:
        stmt = stmt.where(orders.c.created_at < spec.created_before)
    return stmt


class OrderListingLoader(
    BatchLoader[tuple[OrderFilterSpec, OrderSortSpec, PageRequest], Page[Row[Any]]]
):
    """Pages of the order listing: one statement per key (staff list one listing at a time)."""

    async def load_batch(
        self, keys: list[tuple[OrderFilterSpec, OrderSortSpec, PageRequest]]
    ) -> list[Page[Row[Any]]]:
        pages = []
        for spec, sort, page in keys:
            stmt = single_page_select(_filtered(select(orders), spec), sort.keyset, page)
            pages.append(to_page(await self.fetch(stmt), page))
        return pages


class OrderListingCountLoader(BatchLoader[OrderFilterSpec, int]):
    """How many orders a listing filter matches."""

    async def load_batch(self, keys: list[OrderFilterSpec]) -> list[int]:
        counts = []
        for spec in keys:
            stmt = _filtered(select(func.count()).select_from(orders), spec)
            (row,) = await self.fetch(stmt)
            counts.append(int(row[0]))
        return counts
