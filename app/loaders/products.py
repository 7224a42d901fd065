"""Product listings: filtering, sorting and keyset pages, for the root field and categories.

A listing key names its scope (a category whose subtree it covers, or the whole
catalog), a filter, a sort and a page. Keys that differ only in scope share one
statement: a recursive CTE maps each scope to its subtree and a ROW_NUMBER window
cuts one page per scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Row,
    Select,
    and_,
    exists,
    func,
    not_,
    or_,
    select,
    true,
)

from app.loaders.base import BatchLoader
from app.loaders.catalog import PRODUCT_LIST, categories, products, variants
from app.loaders.paging import (
    KeysetOrder,
    Page,
    group_pages,
    partitioned_page_select,
    single_page_select,
    to_page,
)
from app.platform.events import entity_tag
from app.platform.pagination import CursorSort, PageRequest, SortValue


class ProductSortField(StrEnum):
    """What a product listing can be sorted by."""

    NAME = "NAME"
    PRICE = "PRICE"
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


@dataclass(frozen=True, slots=True)
class ProductFilterSpec:
    """A listing filter in storage terms (ids decoded, prices in minor units)."""

    category_id: int | None = None
    category_slug: str | None = None
    search: str | None = None
    price_min_minor: int | None = None
    price_max_minor: int | None = None
    in_stock: bool | None = None
    rating_min: float | None = None


@dataclass(frozen=True, slots=True)
class ProductOrder:
    """A listing sort; cursors are only valid for the sort that made them."""

    field: ProductSortField = ProductSortField.NAME
    descending: bool = False

    @property
    def cursor_sort(self) -> CursorSort:
        """What a cursor carries to prove which sort it belongs to, and its value type."""
        return CursorSort(
            name=f"products:{self.field.value}:{'desc' if self.descending else 'asc'}",
            value_type=_SORT_VALUE_TYPES[self.field],
        )


_SORT_VALUE_TYPES: dict[ProductSortField, type[str] | type[int] | type[float] | type[datetime]] = {
    ProductSortField.NAME: str,
    ProductSortField.PRICE: int,
    ProductSortField.CREATED_AT: datetime,
    ProductSortField.RATING: float,
}


@dataclass(frozen=True, slots=True)
class ProductPageKey:
    """One page of a product listing."""

    scope_category_id: int | None
    filter: ProductFilterSpec
    order: ProductOrder
    page: PageRequest


@dataclass(frozen=True, slots=True)
class ProductCountKey:
    """The size of a product listing."""

    scope_category_id: int | None
    filter: ProductFilterSpec


# Products without variants have no price; they sort as 0 so keyset comparisons never meet NULL.
_SORT_KEYS: dict[ProductSortField, ColumnElement[Any]] = {
    ProductSortField.NAME: products.c.name,
    ProductSortField.PRICE: func.coalesce(products.c.price_min_minor, 0),
    ProductSortField.CREATED_AT: products.c.created_at,
    ProductSortField.RATING: products.c.rating_average,
}


def sort_value(row: Row[Any], field: ProductSortField) -> SortValue:
    """The value of a product row under a sort, as its cursor stores it."""
    if field is ProductSortField.PRICE:
        return row.price_min_minor or 0
    if field is ProductSortField.NAME:
        return row.name  # type: ignore[no-any-return]
    if field is ProductSortField.CREATED_AT:
        return row.created_at  # type: ignore[no-any-return]
    return row.rating_average  # type: ignore[no-any-return]


def keyset_order(order: ProductOrder) -> KeysetOrder:
    """The keyset ordering for a product sort, with the id as tie-breaker."""
    return KeysetOrder(
        key=_SORT_KEYS[order.field], id_column=products.c.id, descending=order.descending
    )


def category_subtrees(roots: Select[Any], name: str = "category_tree") -> CTE:
    """(root_id, id) for every category under each root, roots included."""
    # Distinct names: a category's listing filtered by category holds two trees in one statement.
    base = roots.cte(name, recursive=True)
    child = select(base.c.root_id, categories.c.id).where(categories.c.parent_id == base.c.id)
    return base.union_all(child)


def _roots_by_id(ids: list[int]) -> Select[Any]:
    return select(categories.c.id.label("root_id"), categories.c.id).where(categories.c.id.in_(ids))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_conditions(
    spec: ProductFilterSpec, *, include_unpublished: bool
) -> list[ColumnElement[bool]]:
    """WHERE terms for a filter (and for what the viewer may see)."""
    terms: list[ColumnElement[bool]] = []
    if not include_unpublished:
        terms.append(products.c.is_published == true())
    # Each of categoryId and categorySlug keeps its own subtree (both given: both apply).
    for column, value in (
        (categories.c.id, spec.category_id),
        (categories.c.slug, spec.category_slug),
    ):
        if value is not None:
            roots = select(categories.c.id.label("root_id"), categories.c.id).where(column == value)
            tree = category_subtrees(roots, f"filter_category_tree_{column.name}")
            terms.append(products.c.category_id.in_(select(tree.c.id)))
    if spec.search:
        pattern = f"%{_escape_like(spec.search.lower())}%"
        terms.append(
            or_(
                func.lower(products.c.name).like(pattern, escape="\\"),
                func.lower(products.c.description).like(pattern, escape="\\"),
            )
        )
    if spec.price_min_minor is not None:
        terms.append(products.c.price_min_minor >= spec.price_min_minor)
    if spec.price_max_minor is not None:
        terms.append(products.c.price_min_minor <= spec.price_max_minor)
    if spec.in_stock is not None:
        has_stock = exists().where(
            and_(variants.c.product_id == products.c.id, variants.c.stock > 0)
        )
        terms.append(has_stock if spec.in_stock else not_(has_stock))
    if spec.rating_min is not None:
        terms.append(
            and_(products.c.rating_count > 0, products.c.rating_average >= spec.rating_min)
        )
    return terms


# Building a listing statement costs more CPU than PostgreSQL spends running it, and
# storefronts ask for the same few listings (first pages, default sorts) over and over.
# Statements are immutable, so the recent ones are kept, with their SQLAlchemy cache keys.
@lru_cache(maxsize=256)
def catalog_page_statement(
    spec: ProductFilterSpec, order: ProductOrder, page: PageRequest, include_unpublished: bool
) -> Select[Any]:
    """One page of the whole catalog's listing."""
    conditions = filter_conditions(spec, include_unpublished=include_unpublished)
    return single_page_select(select(products).where(*conditions), keyset_order(order), page)


class ProductPagesLoader(BatchLoader[ProductPageKey, Page[Row[Any]]]):
    """Pages of product listings; one statement per distinct (filter, sort, page)."""

    cached_as = "product_pages"

    def tags(self, key: ProductPageKey, value: Page[Row[Any]]) -> list[str]:
        return [PRODUCT_LIST, *(entity_tag("Product", row.id) for row in value.rows)]

    async def load_batch(self, keys: list[ProductPageKey]) -> list[Page[Row[Any]]]:
        groups: dict[tuple[ProductFilterSpec, ProductOrder, PageRequest], list[int | None]] = {}
        for key in keys:
            groups.setdefault((key.filter, key.order, key.page), []).append(key.scope_category_id)
        pages: dict[ProductPageKey, Page[Row[Any]]] = {}
        for (spec, order, page), scopes in groups.items():
            if None in scopes:
                stmt = catalog_page_statement(spec, order, page, self.include_unpublished)
                rows = await self.fetch(stmt)
                pages[ProductPageKey(None, spec, order, page)] = to_page(rows, page)
            scoped = [scope for scope in scopes if scope is not None]
            if scoped:
                conditions = filter_conditions(spec, include_unpublished=self.include_unpublished)
                ordering = keyset_order(order)
                tree = category_subtrees(_roots_by_id(scoped))
                stmt = (
                    select(products, tree.c.root_id.label("scope_id"))
                    .join(tree, tree.c.id == products.c.category_id)
                    .where(*conditions)
                )
                paged = partitioned_page_select(
                    stmt, tree.c.root_id.label("scope_id"), ordering, page
                )
                grouped = group_pages(await self.fetch(paged), lambda row: row.scope_id, page)
                for scope in scoped:
                    pages[ProductPageKey(scope, spec, order, page)] = grouped.get(scope) or to_page(
                        [], page
                    )
        return [pages[key] for key in keys]


class ProductCountLoader(BatchLoader[ProductCountKey, int]):
    """How many products a listing holds in all; one statement per distinct filter."""

    cached_as = "product_count"

    def tags(self, key: ProductCountKey, value: int) -> list[str]:
        return [PRODUCT_LIST]

    async def load_batch(self, keys: list[ProductCountKey]) -> list[int]:
        groups: dict[ProductFilterSpec, list[int | None]] = {}
        for key in keys:
            groups.setdefault(key.filter, []).append(key.scope_category_id)
        counts: dict[ProductCountKey, int] = {}
        for spec, scopes in groups.items():
            conditions = filter_conditions(spec, include_unpublished=self.include_unpublished)
            if None in scopes:
                rows = await self.fetch(
                    select(func.count()).select_from(products).where(*conditions)
                )
                counts[ProductCountKey(None, spec)] = int(rows[0][0])
            scoped = [scope for scope in scopes if scope is not None]
            if scoped:
                tree = category_subtrees(_roots_by_id(scoped))
                stmt = (
                    select(tree.c.root_id, func.count().label("total"))
                    .select_from(products)
                    .join(tree, tree.c.id == products.c.category_id)
                    .where(*conditions)
                    .group_by(tree.c.root_id)
                )
                found = {row.root_id: int(row.total) for row in await self.fetch(stmt)}
                for scope in scoped:
                    counts[ProductCountKey(scope, spec)] = found.get(scope, 0)
        return [counts[key] for key in keys]
