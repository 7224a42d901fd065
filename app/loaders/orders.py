"""Loaders for orders: by id, each order's lines and payments, each customer's pages of orders.

Orders are the viewer's own data: none of these loaders reads or fills the entity cache,
and none names cache tags, so a response that reads an order is never cached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select

from app.loaders.base import KEYS, BatchLoader, by_key, grouped_by_key, table_of
from app.loaders.paging import KeysetOrder, Page, group_pages, partitioned_page_select, to_page
from app.models import Order, OrderLine, Payment
from app.platform.pagination import CursorSort, PageRequest

orders = table_of(Order)
order_lines = table_of(OrderLine)
payments = table_of(Payment)

OptionalRow = Row[Any] | None

ORDER_SORT = CursorSort(name="orders:newest", value_type=datetime)
ORDER_ORDER = KeysetOrder(key=orders.c.created_at, id_column=orders.c.id, descending=True)

# Built once, run with {"keys": [...]} (see KEYS).
ORDERS_BY_ID = select(orders).where(orders.c.id.in_(KEYS))
LINES_BY_ORDER_ID = (
    select(order_lines)
    .where(order_lines.c.order_id.in_(KEYS))
    .order_by(order_lines.c.order_id, order_lines.c.id)
)
PAYMENTS_BY_ORDER_ID = (
    select(payments)
    .where(payments.c.order_id.in_(KEYS))
    .order_by(payments.c.order_id, payments.c.id)
)
ORDER_COUNTS_BY_USER_ID = (
    select(orders.c.user_id, func.count().label("order_count"))
    .where(orders.c.user_id.in_(KEYS))
    .group_by(orders.c.user_id)
)


class OrderByIdLoader(BatchLoader[int, OptionalRow]):
    """Order rows by id (who may see one is the caller's to check)."""

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(ORDERS_BY_ID, {"keys": keys})
        return by_key(rows, keys, "id")


class OrderLinesByOrderIdLoader(BatchLoader[int, list[Row[Any]]]):
    """Each order's lines, in the order they were placed."""

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(LINES_BY_ORDER_ID, {"keys": keys})
        return grouped_by_key(rows, keys, "order_id")


class PaymentsByOrderIdLoader(BatchLoader[int, list[Row[Any]]]):
    """Each order's payments, oldest first."""

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(PAYMENTS_BY_ORDER_ID, {"keys": keys})
        return grouped_by_key(rows, keys, "order_id")


class OrderPagesByUserIdLoader(BatchLoader[tuple[int, PageRequest], Page[Row[Any]]]):
    """One page of each customer's orders, newest first: one statement per distinct page shape."""

    async def load_batch(self, keys: list[tuple[int, PageRequest]]) -> list[Page[Row[Any]]]:
        by_page: dict[PageRequest, list[int]] = {}
        for user_id, page in keys:
            by_page.setdefault(page, []).append(user_id)
        pages: dict[tuple[int, PageRequest], Page[Row[Any]]] = {}
        for page, user_ids in by_page.items():
            stmt = partitioned_page_select(
                select(orders).where(orders.c.user_id.in_(user_ids)),
                orders.c.user_id,
                ORDER_ORDER,
                page,
            )
            grouped = group_pages(await self.fetch(stmt), lambda row: row.user_id, page)
            for user_id in user_ids:
                pages[(user_id, page)] = grouped.get(user_id) or to_page([], page)
        return [pages[key] for key in keys]


class OrderCountByUserIdLoader(BatchLoader[int, int]):
    """How many orders each customer has."""

    async def load_batch(self, keys: list[int]) -> list[int]:
        rows = await self.fetch(ORDER_COUNTS_BY_USER_ID, {"keys": keys})
        counts = {row.user_id: int(row.order_count) for row in rows}
        return [counts.get(key, 0) for key in keys]
