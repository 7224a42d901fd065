"""How product listings are narrowed and sorted: ProductFilter, ProductSort, ProductSortField."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from app.loaders.products import ProductFilterSpec, ProductOrder, ProductSortField
from app.platform.errors import InvalidInput
from app.platform.global_ids import decode_id_of
from app.platform.money import to_minor
from app.schema.common import SortDirection
from app.schema.enums import graphql_enum

MAX_SEARCH_LENGTH = 200


graphql_enum(
    ProductSortField,
    name="ProductSortField",
    description="What products can be sorted by.",
    values={
        ProductSortField.NAME: "Product name.",
        ProductSortField.PRICE: "Lowest variant price.",
        ProductSortField.CREATED_AT: "When the product was added.",
        ProductSortField.RATING: "Average rating (unrated products count as 0).",
    },
)


@strawberry.input(description="How to sort products.")
class ProductSort:
    """A product sort."""

    field: ProductSortField = strawberry.field(description="The sort key.")
    direction: SortDirection = strawberry.field(default=SortDirection.ASC, description="The order.")

    def to_order(self) -> ProductOrder:
        """In storage terms."""
        return ProductOrder(field=self.field, descending=self.direction is SortDirection.DESC)


@strawberry.input(description="Conditions a product must meet; all given ones apply.")
class ProductFilter:
    """A product filter."""

    category_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this category and its subcategories."
    )
    category_slug: str | None = strawberry.field(
        default=None, description="Only the category with this slug and its subcategories."
    )
    search: str | None = strawberry.field(
        default=None,
        description="Text in the name or description (case-insensitive, at most 200 characters).",
    )
    price_min: Decimal | None = strawberry.field(
        default=None, description="Lowest variant price at least this (in the shop currency)."
    )
    price_max: Decimal | None = strawberry.field(
        default=None, description="Lowest variant price at most this (in the shop currency)."
    )
    in_stock: bool | None = strawberry.field(
        default=None, description="true: some variant in stock; false: none in stock."
    )
    rating_min: float | None = strawberry.field(
        default=None,
        description="Average rating at least this (1 to 5); unrated products are left out.",
    )

    def to_spec(self, currency: str) -> ProductFilterSpec:
        """Check the values and put them in storage terms."""
        search = (self.search or "").strip()
        if len(search) > MAX_SEARCH_LENGTH:
            raise InvalidInput(f"`filter.search` must be at most {MAX_SEARCH_LENGTH} characters")
        if self.rating_min is not None and not 0 <= self.rating_min <= 5:
            raise InvalidInput("`filter.ratingMin` must be between 0 and 5")
        return ProductFilterSpec(
            category_id=decode_id_of(self.category_id, "Category") if self.category_id else None,
            category_slug=self.category_slug,
            search=search or None,
            price_min_minor=None
            if self.price_min is None
            else to_minor(self.price_min, currency, field="filter.priceMin"),
            price_max_minor=None
            if self.price_max is None
            else to_minor(self.price_max, currency, field="filter.priceMax"),
            in_stock=self.in_stock,
            rating_min=self.rating_min,
        )


FilterArgument = Annotated[
    ProductFilter | None, strawberry.argument(description="Narrow the list down.")
]
SortArgument = Annotated[
    ProductSort | None, strawberry.argument(description="Sort order (default: name A to Z).")
]
