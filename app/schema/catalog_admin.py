"""Inputs and payloads of the catalog mutations: staff catalog management and customer reviews."""

from __future__ import annotations

from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from app.schema.catalog import Category, Product, ProductVariant, Review
from app.schema.errors import UserError

NO_CHANGE = "Omit (or null) to keep the current value."


@strawberry.input(description="A new category.")
class CategoryInput:
    """What a new category is made of."""

    name: str = strawberry.field(description="Display name (1 to 200 characters).")
    slug: str | None = strawberry.field(
        default=None,
        description="URL-friendly unique name (lower-case words joined by hyphens); made from the name when omitted.",
    )
    description: str | None = strawberry.field(
        default=None, description="Longer text about the category."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="The parent category; omit for a root category."
    )
    position: int | None = strawberry.field(
        default=None, description="Display order among its siblings; after the last when omitted."
    )


@strawberry.input(description="Changes to a category; omitted fields keep their value.")
class CategoryUpdateInput:
    """What to change in a category."""

    name: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"Display name. {NO_CHANGE}"
    )
    slug: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"URL-friendly unique name. {NO_CHANGE}"
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="Longer text; null clears it, omit to keep it."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="New parent; null makes it a root, omit to keep it. Never itself or a descendant.",
    )
    position: int | None = strawberry.field(
        default=strawberry.UNSET, description=f"Display order among its siblings. {NO_CHANGE}"
    )


@strawberry.input(description="A new product (created without variants).")
class ProductCreateInput:
    """What a new product is made of."""

    name: str = strawberry.field(description="Display name (1 to 200 characters).")
    slug: str | None = strawberry.field(
        default=None,
        description="URL-friendly unique name (lower-case words joined by hyphens); made from the name when omitted.",
    )
    description: str = strawberry.field(default="", description="Longer text, plain.")
    category_id: strawberry.ID | None = strawberry.field(
        default=None, description="The category to list it under."
    )
    is_published: bool = strawberry.field(
        default=False, description="Whether the public can see it (default: not yet)."
    )


@strawberry.input(description="Changes to a product; omitted fields keep their value.")
class ProductUpdateInput:
    """What to change in a product."""

    name: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"Display name. {NO_CHANGE}"
    )
    slug: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"URL-friendly unique name. {NO_CHANGE}"
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"Longer text, plain. {NO_CHANGE}"
    )
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="The category to list it under; null removes it from its category, omit to keep it.",
    )
    is_published: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"Publish (true) or unpublish (false). {NO_CHANGE}",
    )


@strawberry.input(description="A new variant of a product.")
class VariantInput:
    """What a new variant is made of."""

    sku: str = strawberry.field(description="Stock keeping unit, unique in the shop.")
    name: str = strawberry.field(description="Display name, e.g. 'Large / Blue'.")
    price: Decimal = strawberry.field(
        description="Unit price in the shop currency, 0 or more, at most its minor-unit digits."
    )
    attributes: JSON | None = strawberry.field(
        default=None,
        description='Flat JSON object of strings, numbers and booleans, e.g. {"size": "L"}.',
    )
    stock: int = strawberry.field(default=0, description="Units in stock to start with.")


@strawberry.input(description="Changes to a variant; omitted fields keep their value.")
class VariantUpdateInput:
    """What to change in a variant (stock changes through setStock and adjustStock)."""

    sku: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"Stock keeping unit, unique in the shop. {NO_CHANGE}"
    )
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"Display name. {NO_CHANGE}"
    )
    price: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description=f"Unit price in the shop currency. {NO_CHANGE}"
    )
    attributes: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"Replaces all attributes with this flat JSON object. {NO_CHANGE}",
    )


@strawberry.input(description="A new picture of a product.")
class ProductImageInput:
    """What a new image is made of."""

    url: str = strawberry.field(description="Absolute http:// or https:// URL of the image.")
    alt: str = strawberry.field(default="", description="Text alternative for screen readers.")
    position: int | None = strawberry.field(
        default=None, description="Display order (0 first, unique per product); last when omitted."
    )


@strawberry.input(description="A review of a product.")
class ReviewInput:
    """What a new review is made of."""

    product_id: strawberry.ID = strawberry.field(description="The reviewed product.")
    rating: int = strawberry.field(description="From 1 (poor) to 5 (excellent).")
    title: str = strawberry.field(description="Headline (1 to 200 characters).")
    body: str = strawberry.field(description="The review text (may be empty).")


@strawberry.input(description="Changes to your review; omitted fields keep their value.")
class ReviewUpdateInput:
    """What to change in a review."""

    rating: int | None = strawberry.field(
        default=strawberry.UNSET, description=f"From 1 (poor) to 5 (excellent). {NO_CHANGE}"
    )
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"Headline. {NO_CHANGE}"
    )
    body: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"The review text. {NO_CHANGE}"
    )


@strawberry.type(description="The result of a category mutation.")
class CategoryPayload:
    """A category or what went wrong."""

    category: Category | None = strawberry.field(
        description="The category as it is now; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Expected failures; empty on success."
    )


@strawberry.type(description="The result of a product mutation.")
class ProductPayload:
    """A product or what went wrong."""

    product: Product | None = strawberry.field(
        description="The product as it is now; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Expected failures; empty on success."
    )


@strawberry.type(description="The result of a variant or stock mutation.")
class VariantPayload:
    """A variant or what went wrong."""

    variant: ProductVariant | None = strawberry.field(
        description="The variant as it is now; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Expected failures; empty on success."
    )


@strawberry.type(description="The result of a review mutation.")
class ReviewPayload:
    """A review or what went wrong."""

    review: Review | None = strawberry.field(
        description="The review as it is now (as it was, after deleteReview); null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Expected failures; empty on success."
    )
