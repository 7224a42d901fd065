"""Loaders for catalog relations and by-id/slug lookups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, select, true

from app.loaders.base import KEYS, BatchLoader, by_key, grouped_by_key, table_of
from app.loaders.paging import KeysetOrder, Page, group_pages, partitioned_page_select, to_page
from app.models import Category, Product, ProductImage, ProductVariant, Review, User
from app.platform.events import entity_tag, listing_tag
from app.platform.pagination import CursorSort, PageRequest

categories = table_of(Category)
products = table_of(Product)
variants = table_of(ProductVariant)
images = table_of(ProductImage)
reviews = table_of(Review)
users = table_of(User)

REVIEW_SORT = CursorSort(name="reviews:newest", value_type=datetime)
REVIEW_ORDER = KeysetOrder(key=reviews.c.created_at, id_column=reviews.c.id, descending=True)

OptionalRow = Row[Any] | None

CATEGORY_LIST = listing_tag("Category")
PRODUCT_LIST = listing_tag("Product")

ROOT_PARENT = 0  # the key for root categories: DataLoader keys cannot be None, and no id is 0


def by_visibility(stmt: Select[Any]) -> dict[bool, Select[Any]]:
    """A statement over products, by `include_unpublished`: all rows, or published ones."""
    return {True: stmt, False: stmt.where(products.c.is_published == true())}


# Built once, run with {"keys": [...]} (see KEYS).
CATEGORIES_BY_ID = select(categories).where(categories.c.id.in_(KEYS))
CATEGORIES_BY_SLUG = select(categories).where(categories.c.slug.in_(KEYS))
_PARENT_KEY = func.coalesce(categories.c.parent_id, ROOT_PARENT).label("parent_key")
CATEGORIES_BY_PARENT_KEY = (
    select(categories, _PARENT_KEY)
    .where(_PARENT_KEY.in_(KEYS))
    .order_by(categories.c.position, categories.c.name, categories.c.id)
)
PRODUCTS_BY_ID = by_visibility(select(products).where(products.c.id.in_(KEYS)))
PRODUCTS_BY_SLUG = by_visibility(select(products).where(products.c.slug.in_(KEYS)))
VARIANTS_BY_ID = by_visibility(
    select(variants)
    .join(products, products.c.id == variants.c.product_id)
    .where(variants.c.id.in_(KEYS))
)
REVIEWS_BY_ID = by_visibility(
    select(reviews)
    .join(products, products.c.id == reviews.c.product_id)
    .where(reviews.c.id.in_(KEYS))
)
VARIANTS_BY_PRODUCT_ID = (
    select(variants)
    .where(variants.c.product_id.in_(KEYS))
    .order_by(variants.c.product_id, variants.c.position, variants.c.id)
)
IMAGES_BY_PRODUCT_ID = (
    select(images)
    .where(images.c.product_id.in_(KEYS))
    .order_by(images.c.product_id, images.c.position, images.c.id)
)
USER_NAMES_BY_ID = select(users.c.id, users.c.full_name).where(users.c.id.in_(KEYS))


class CategoryByIdLoader(BatchLoader[int, OptionalRow]):
    """Category rows by id."""

    cached_as = "category_by_id"

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(CATEGORIES_BY_ID, {"keys": keys})
        return by_key(rows, keys, "id")

    def tags(self, key: int, value: OptionalRow) -> list[str]:
        return [entity_tag("Category", key)]


class CategoryBySlugLoader(BatchLoader[str, OptionalRow]):
    """Category rows by slug."""

    cached_as = "category_by_slug"

    async def load_batch(self, keys: list[str]) -> list[OptionalRow]:
        rows = await self.fetch(CATEGORIES_BY_SLUG, {"keys": keys})
        return by_key(rows, keys, "slug")

    def tags(self, key: str, value: OptionalRow) -> list[str]:
        return [CATEGORY_LIST]


class CategoriesByParentIdLoader(BatchLoader[int, list[Row[Any]]]):
    """Child categories of each parent id, by position then name; key ROOT_PARENT gives the roots."""

    cached_as = "categories_by_parent"

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(CATEGORIES_BY_PARENT_KEY, {"keys": keys})
        return grouped_by_key(rows, keys, "parent_key")

    def tags(self, key: int, value: list[Row[Any]]) -> list[str]:
        return [CATEGORY_LIST]


class ProductByIdLoader(BatchLoader[int, OptionalRow]):
    """Product rows by id (unpublished ones only for staff)."""

    cached_as = "product_by_id"

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(PRODUCTS_BY_ID[self.include_unpublished], {"keys": keys})
        return by_key(rows, keys, "id")

    def tags(self, key: int, value: OptionalRow) -> list[str]:
        return [entity_tag("Product", key)]


class ProductBySlugLoader(BatchLoader[str, OptionalRow]):
    """Product rows by slug (unpublished ones only for staff)."""

    cached_as = "product_by_slug"

    async def load_batch(self, keys: list[str]) -> list[OptionalRow]:
        rows = await self.fetch(PRODUCTS_BY_SLUG[self.include_unpublished], {"keys": keys})
        return by_key(rows, keys, "slug")

    def tags(self, key: str, value: OptionalRow) -> list[str]:
        # A slug that names nothing yet (or another product later): any listing change.
        return [PRODUCT_LIST] if value is None else [PRODUCT_LIST, entity_tag("Product", value.id)]


class VariantsByProductIdLoader(BatchLoader[int, list[Row[Any]]]):
    """A product's variants in display order."""

    cached_as = "variants_by_product"

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(VARIANTS_BY_PRODUCT_ID, {"keys": keys})
        return grouped_by_key(rows, keys, "product_id")

    def tags(self, key: int, value: list[Row[Any]]) -> list[str]:
        return [entity_tag("Product", key)]  # variant writes change their product too


class VariantByIdLoader(BatchLoader[int, OptionalRow]):
    """Variant rows by id, only when their product is visible."""

    cached_as = "variant_by_id"

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(VARIANTS_BY_ID[self.include_unpublished], {"keys": keys})
        return by_key(rows, keys, "id")

    def tags(self, key: int, value: OptionalRow) -> list[str]:
        # Visible only while its product is published: publishing changes the listings.
        tags = [entity_tag("ProductVariant", key), PRODUCT_LIST]
        if value is not None:
            tags.append(entity_tag("Product", value.product_id))
        return tags


class ImagesByProductIdLoader(BatchLoader[int, list[Row[Any]]]):
    """A product's images by position."""

    cached_as = "images_by_product"

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(IMAGES_BY_PRODUCT_ID, {"keys": keys})
        return grouped_by_key(rows, keys, "product_id")

    def tags(self, key: int, value: list[Row[Any]]) -> list[str]:
        return [entity_tag("Product", key)]


class ReviewByIdLoader(BatchLoader[int, OptionalRow]):
    """Review rows by id, only when their product is visible."""

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(REVIEWS_BY_ID[self.include_unpublished], {"keys": keys})
        return by_key(rows, keys, "id")

    def tags(self, key: int, value: OptionalRow) -> list[str]:
        tags = [entity_tag("Review", key), PRODUCT_LIST]
        if value is not None:
            tags.append(entity_tag("Product", value.product_id))
        return tags


class ReviewPagesByProductIdLoader(BatchLoader[tuple[int, PageRequest], Page[Row[Any]]]):
    """One page of each product's reviews, newest first: one statement per distinct page shape."""

    cached_as = "review_pages"

    async def load_batch(self, keys: list[tuple[int, PageRequest]]) -> list[Page[Row[Any]]]:
        by_page: dict[PageRequest, list[int]] = {}
        for product_id, page in keys:
            by_page.setdefault(page, []).append(product_id)
        pages: dict[tuple[int, PageRequest], Page[Row[Any]]] = {}
        for page, product_ids in by_page.items():
            stmt = partitioned_page_select(
                select(reviews).where(reviews.c.product_id.in_(product_ids)),
                reviews.c.product_id,
                REVIEW_ORDER,
                page,
            )
            grouped = group_pages(await self.fetch(stmt), lambda row: row.product_id, page)
            for product_id in product_ids:
                pages[(product_id, page)] = grouped.get(product_id) or to_page([], page)
        return [pages[key] for key in keys]

    def tags(self, key: tuple[int, PageRequest], value: Page[Row[Any]]) -> list[str]:
        return [entity_tag("Product", key[0])]  # review writes change their product too


class UserNameByIdLoader(BatchLoader[int, OptionalRow]):
    """Only id and full name of users: what public profiles may show."""

    cached_as = "user_name_by_id"

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(USER_NAMES_BY_ID, {"keys": keys})
        return by_key(rows, keys, "id")

    def tags(self, key: int, value: OptionalRow) -> list[str]:
        return [entity_tag("User", key)]
