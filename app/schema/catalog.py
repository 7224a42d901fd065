"""Catalog types: categories, products, variants, images, reviews, and their connections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.scalars import JSON

from app.loaders.catalog import REVIEW_SORT
from app.loaders.paging import Page, cursor_for
from app.loaders.products import (
    ProductCountKey,
    ProductFilterSpec,
    ProductOrder,
    ProductPageKey,
    sort_value,
)
from app.platform.pagination import CursorSort, SortValue
from app.platform.sealed_users import open_name
from app.schema.cache_hints import CATALOG, CATEGORIES, PART_OF_PARENT, PRIVATE
from app.schema.common import Money, MoneyRange
from app.schema.listing import FilterArgument, ProductFilter, ProductSort, SortArgument
from app.schema.permissions import CanSeeStock
from app.schema.relations import each, optional, relation
from app.schema.relay import After, Before, First, Last, Node, PageInfo, Paging
from app.schema.scopes import INVENTORY, REVIEWS


@strawberry.type(description="A category of the catalog tree.", directives=[CATEGORIES])
class Category(Node):
    """A node of the category tree."""

    pk: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    slug: str = strawberry.field(description="URL-friendly unique name.")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="Longer text about the category.")

    @classmethod
    def from_row(cls, row: Row[Any]) -> Category:
        """Build from a `categories` row."""
        return cls(
            pk=row.id,
            parent_id=row.parent_id,
            slug=row.slug,
            name=row.name,
            description=row.description,
        )

    parent: Category | None = relation(
        loader=lambda loaders: loaders.category_by_id,
        key=lambda category: category.parent_id,
        build=optional(lambda row: Category.from_row(row)),
        description="The parent category; null for a root.",
    )
    children: list[Category] = relation(
        loader=lambda loaders: loaders.categories_by_parent_id,
        key=lambda category: category.pk,
        build=each(lambda row: Category.from_row(row)),
        description="Direct subcategories, in display order.",
    )

    @strawberry.field(description="Published products in this category and all its subcategories.")
    async def products(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: FilterArgument = None,
        sort_by: SortArgument = None,
    ) -> ProductConnection:
        return await ProductConnection.load(
            info, self.pk, filter, sort_by, Paging(first, after, last, before)
        )


@strawberry.type(
    description="Average rating and number of reviews of a product.", directives=[PART_OF_PARENT]
)
class RatingSummary:
    """A product's ratings in brief."""

    average: float | None = strawberry.field(
        description="Mean rating from 1 to 5, two decimals; null without reviews."
    )
    count: int = strawberry.field(description="Number of reviews.")


@strawberry.type(description="A picture of a product.", directives=[PART_OF_PARENT])
class ProductImage:
    """An image."""

    url: str = strawberry.field(description="Where the image is served.")
    alt: str = strawberry.field(description="Text alternative for screen readers.")
    position: int = strawberry.field(description="Display order, 0 first.")

    @classmethod
    def from_row(cls, row: Row[Any]) -> ProductImage:
        """Build from a `product_images` row."""
        return cls(url=row.url, alt=row.alt, position=row.position)


@strawberry.type(
    description="A buyable version of a product (size, colour...) with its own price and stock.",
    directives=[CATALOG],
)
class ProductVariant(Node):
    """A variant."""

    pk: strawberry.Private[int]
    product_id: strawberry.Private[int]
    stock: strawberry.Private[int]
    sku: str = strawberry.field(description="Stock keeping unit, unique in the shop.")
    name: str = strawberry.field(description="Display name, e.g. 'Large / Blue'.")
    price: Money = strawberry.field(description="Unit price.")
    in_stock: bool = strawberry.field(description="Whether at least one unit can be ordered.")
    attributes: JSON = strawberry.field(description='Free-form attributes, e.g. {"size": "L"}.')

    @classmethod
    def from_row(cls, row: Row[Any]) -> ProductVariant:
        """Build from a `product_variants` row."""
        return cls(
            pk=row.id,
            product_id=row.product_id,
            stock=row.stock,
            sku=row.sku,
            name=row.name,
            price=Money.from_minor(row.price_minor, row.currency),
            in_stock=row.stock > 0,
            attributes=row.attributes,
        )

    @strawberry.field(
        description="Units in stock. Staff, and partners with the scope inventory:read.",
        permission_classes=[CanSeeStock],
        metadata=INVENTORY,
        directives=[PRIVATE],
    )
    def stock_quantity(self) -> int | None:
        return self.stock

    product: Product = relation(
        loader=lambda loaders: loaders.product_by_id,
        key=lambda variant: variant.product_id,
        build=optional(lambda row: Product.from_row(row)),
        description="The product this is a variant of.",
    )


@strawberry.type(
    description="What a reviewer shows of themself: a display name only.",
    directives=[PART_OF_PARENT],
)
class PublicProfile:
    """A public profile."""

    # The user's full name as stored (sealed); None when the user is gone.
    sealed_name: strawberry.Private[str | None]

    @strawberry.field(description="First name and initial of the last name.")
    def display_name(self, info: strawberry.Info) -> str:
        full_name = (
            "" if self.sealed_name is None else open_name(info.context.cipher, self.sealed_name)
        )
        return self.from_full_name(full_name)

    @staticmethod
    def from_full_name(full_name: str) -> str:
        """'Jane Doe' -> 'Jane D.'"""
        parts = full_name.split()
        if len(parts) < 2:
            return full_name or "Anonymous"
        return f"{parts[0]} {parts[-1][0]}."


@strawberry.type(description="A customer's rating and opinion of a product.", directives=[CATALOG])
class Review(Node):
    """A review."""

    pk: strawberry.Private[int]
    product_id: strawberry.Private[int]
    user_id: strawberry.Private[int]
    # Every field declares reviews:read: a review is also reachable by `node(id)`.
    rating: int = strawberry.field(description="From 1 (poor) to 5 (excellent).", metadata=REVIEWS)
    title: str = strawberry.field(description="Headline.", metadata=REVIEWS)
    body: str = strawberry.field(description="The review text.", metadata=REVIEWS)
    created_at: datetime = strawberry.field(
        description="When it was written (UTC).", metadata=REVIEWS
    )

    @classmethod
    def from_row(cls, row: Row[Any]) -> Review:
        """Build from a `reviews` row."""
        return cls(
            pk=row.id,
            product_id=row.product_id,
            user_id=row.user_id,
            rating=row.rating,
            title=row.title,
            body=row.body,
            created_at=row.created_at,
        )

    author: PublicProfile = relation(
        loader=lambda loaders: loaders.user_name_by_id,
        key=lambda review: review.user_id,
        build=lambda row: PublicProfile(sealed_name=row.full_name if row is not None else None),
        description="Who wrote it (display name only).",
        metadata=REVIEWS,
    )
    product: Product = relation(
        loader=lambda loaders: loaders.product_by_id,
        key=lambda review: review.product_id,
        build=optional(lambda row: Product.from_row(row)),
        description="The reviewed product.",
        metadata=REVIEWS,
    )


@strawberry.type(description="A review in a connection.", directives=[PART_OF_PARENT])
class ReviewEdge:
    """An edge to a review."""

    sort_value: strawberry.Private[SortValue]
    node: Review = strawberry.field(description="The review.")

    @strawberry.field(description="Pass to `after`/`before` to page from here.")
    def cursor(self) -> str:
        return cursor_for(REVIEW_SORT, self.sort_value, self.node.pk)


@strawberry.type(description="A page of reviews, newest first.", directives=[PART_OF_PARENT])
class ReviewConnection:
    """Reviews, paged."""

    edges: list[ReviewEdge] = strawberry.field(description="The reviews of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    # Read from the product's stored rating count, not counted: it costs nothing (engine/cost.py).
    total_count: int = strawberry.field(
        description="How many reviews there are in all.", metadata={"cost": 0}
    )

    @classmethod
    def from_page(cls, page: Page[Any], *, total_count: int) -> ReviewConnection:
        """Build from a page of `reviews` rows."""
        edges = [
            ReviewEdge(sort_value=row.created_at, node=Review.from_row(row)) for row in page.rows
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of(page, [edge.cursor() for edge in edges[:1] + edges[-1:]]),
            total_count=total_count,
        )


@strawberry.type(description="Something the shop sells.", directives=[CATALOG])
class Product(Node):
    """A product."""

    pk: strawberry.Private[int]
    category_id: strawberry.Private[int | None]
    slug: str = strawberry.field(description="URL-friendly unique name.")
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(description="Longer text, plain.")
    is_published: bool = strawberry.field(description="Whether the public can see it.")
    price_range: MoneyRange | None = strawberry.field(
        description="Cheapest and dearest variant; null when it has no variants."
    )
    rating_summary: RatingSummary = strawberry.field(description="Average rating and review count.")
    created_at: datetime = strawberry.field(description="When it was added (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> Product:
        """Build from a `products` row."""
        price_range = None
        if row.price_min_minor is not None:
            price_range = MoneyRange(
                min=Money.from_minor(row.price_min_minor, row.currency),
                max=Money.from_minor(row.price_max_minor, row.currency),
            )
        return cls(
            pk=row.id,
            category_id=row.category_id,
            slug=row.slug,
            name=row.name,
            description=row.description,
            is_published=row.is_published,
            price_range=price_range,
            rating_summary=RatingSummary(
                average=round(row.rating_average, 2) if row.rating_count else None,
                count=row.rating_count,
            ),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    category: Category | None = relation(
        loader=lambda loaders: loaders.category_by_id,
        key=lambda product: product.category_id,
        build=optional(lambda row: Category.from_row(row)),
        description="The category it is listed under.",
    )
    variants: list[ProductVariant] = relation(
        loader=lambda loaders: loaders.variants_by_product_id,
        key=lambda product: product.pk,
        build=each(lambda row: ProductVariant.from_row(row)),
        description="Buyable variants, in display order.",
    )
    images: list[ProductImage] = relation(
        loader=lambda loaders: loaders.images_by_product_id,
        key=lambda product: product.pk,
        build=each(lambda row: ProductImage.from_row(row)),
        description="Pictures, in display order.",
    )

    @strawberry.field(
        description="Reviews, newest first. Partners need the scope reviews:read.",
        metadata=REVIEWS,
    )
    async def reviews(
        self,
        info: strawberry.Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ReviewConnection:
        page = Paging(first, after, last, before).request(REVIEW_SORT, info.context.settings)
        result = await info.context.loaders.review_pages_by_product_id.load((self.pk, page))
        return ReviewConnection.from_page(result, total_count=self.rating_summary.count)


@strawberry.type(description="A product in a connection.", directives=[PART_OF_PARENT])
class ProductEdge:
    """An edge to a product."""

    sort: strawberry.Private[CursorSort]
    sort_value: strawberry.Private[SortValue]
    node: Product = strawberry.field(description="The product.")

    @strawberry.field(description="Pass to `after`/`before` to page from here.")
    def cursor(self) -> str:
        return cursor_for(self.sort, self.sort_value, self.node.pk)


@strawberry.type(description="A page of products.", directives=[PART_OF_PARENT])
class ProductConnection:
    """Products, paged."""

    count_key: strawberry.Private[ProductCountKey]
    edges: list[ProductEdge] = strawberry.field(description="The products of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")

    @strawberry.field(description="How many products match, in all pages.")
    async def total_count(self, info: strawberry.Info) -> int:
        return await info.context.loaders.product_count.load(self.count_key)  # type: ignore[no-any-return]

    @classmethod
    async def load(
        cls,
        info: strawberry.Info,
        scope_category_id: int | None,
        filter: ProductFilter | None,
        sort_by: ProductSort | None,
        paging: Paging,
    ) -> ProductConnection:
        """A page of the listing under a category (or the whole catalog), read by its loader."""
        spec = filter.to_spec(info.context.settings.currency) if filter else ProductFilterSpec()
        order = sort_by.to_order() if sort_by else ProductOrder()
        page = paging.request(order.cursor_sort, info.context.settings)
        result = await info.context.loaders.product_pages.load(
            ProductPageKey(scope_category_id, spec, order, page)
        )
        edges = [
            ProductEdge(
                sort=order.cursor_sort,
                sort_value=sort_value(row, order.field),
                node=Product.from_row(row),
            )
            for row in result.rows
        ]
        return cls(
            count_key=ProductCountKey(scope_category_id, spec),
            edges=edges,
            page_info=PageInfo.of(result, [edge.cursor() for edge in edges[:1] + edges[-1:]]),
        )
