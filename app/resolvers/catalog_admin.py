"""Catalog mutations: staff manage categories, products, variants, images and stock; customers review.

Each mutation is its arguments, one service call and a payload (app.resolvers.mutations).
"""

from __future__ import annotations

from typing import Any, TypeVar

import strawberry
from sqlalchemy import Row

from app.context import Context
from app.platform.global_ids import decode_id_of
from app.resolvers.mutations import Argument, global_id, mutation, payload_of
from app.schema.catalog import Category, Product, ProductVariant, Review
from app.schema.catalog_admin import (
    CategoryInput,
    CategoryPayload,
    CategoryUpdateInput,
    ProductCreateInput,
    ProductImageInput,
    ProductPayload,
    ProductUpdateInput,
    ReviewInput,
    ReviewPayload,
    ReviewUpdateInput,
    VariantInput,
    VariantPayload,
    VariantUpdateInput,
)
from app.schema.permissions import SIGNED_IN, STAFF
from app.schema.scopes import NOT_FOR_PARTNERS
from app.services import catalog
from app.services.catalog import UNCHANGED, Unchanged

T = TypeVar("T")
WHAT = "What to create or change."

CATEGORY = payload_of(CategoryPayload, "category", Category.from_row)
PRODUCT = payload_of(ProductPayload, "product", Product.from_row)
VARIANT = payload_of(VariantPayload, "variant", ProductVariant.from_row)
REVIEW = payload_of(ReviewPayload, "review", Review.from_row)

# Arguments named for the service's fields; `id` where the mutation's object is the one meant.
THE_CATEGORY = global_id("Category", "The category's global ID.", name="id")
THE_PRODUCT = global_id("Product", "The product's global ID.", name="id")
PRODUCT_ID = global_id("Product", "The product's global ID.")
THE_VARIANT = global_id("ProductVariant", "The variant's global ID.", name="id")
VARIANT_ID = global_id("ProductVariant", "The variant's global ID.")
THE_REVIEW = global_id("Review", "The review's global ID.", name="id")


def _input(input_type: type) -> Argument:
    return Argument(input_type, WHAT)


def _kept(value: T | None) -> T | Unchanged:
    """An omitted or null update field of a non-nullable value: keep the current value."""
    return UNCHANGED if value is None or value is strawberry.UNSET else value


def _cleared(value: T | None) -> T | Unchanged | None:
    """An omitted update field keeps the value; null clears it."""
    return UNCHANGED if value is strawberry.UNSET else value


def _optional_pk(value: strawberry.ID | None, type_name: str, field: str) -> int | None:
    """The primary key of an optional global ID (a malformed one is a userError about `field`)."""
    return None if value is None else decode_id_of(value, type_name, field=field)


def _moved_pk(value: strawberry.ID | None, type_name: str, field: str) -> int | Unchanged | None:
    """An update's new parent: omitted keeps it, null removes it, an ID names the new one."""
    return UNCHANGED if value is strawberry.UNSET else _optional_pk(value, type_name, field)


@strawberry.type
class CatalogAdminMutation:
    """Catalog management: staff only."""

    @mutation(CATEGORY, STAFF, input=_input(CategoryInput), scope=NOT_FOR_PARTNERS)
    async def create_category(context: Context, *, input: CategoryInput) -> Row[Any]:
        """Add a category. Staff only."""
        return await catalog.create_category(
            context.db,
            name=input.name,
            slug=input.slug,
            description=input.description,
            parent_id=_optional_pk(input.parent_id, "Category", "parent_id"),
            position=input.position,
        )

    @mutation(
        CATEGORY,
        STAFF,
        category_id=THE_CATEGORY,
        input=_input(CategoryUpdateInput),
        scope=NOT_FOR_PARTNERS,
    )
    async def update_category(
        context: Context, *, category_id: int, input: CategoryUpdateInput
    ) -> Row[Any]:
        """Change a category. Staff only."""
        return await catalog.update_category(
            context.db,
            category_id=category_id,
            name=_kept(input.name),
            slug=_kept(input.slug),
            description=_cleared(input.description),
            parent_id=_moved_pk(input.parent_id, "Category", "parent_id"),
            position=_kept(input.position),
        )

    @mutation(PRODUCT, STAFF, input=_input(ProductCreateInput), scope=NOT_FOR_PARTNERS)
    async def create_product(context: Context, *, input: ProductCreateInput) -> Row[Any]:
        """Add a product (without variants; unpublished unless isPublished). Staff only."""
        return await catalog.create_product(
            context.db,
            name=input.name,
            currency=context.settings.currency,
            slug=input.slug,
            description=input.description,
            category_id=_optional_pk(input.category_id, "Category", "category_id"),
            is_published=input.is_published,
        )

    @mutation(
        PRODUCT,
        STAFF,
        product_id=THE_PRODUCT,
        input=_input(ProductUpdateInput),
        scope=NOT_FOR_PARTNERS,
    )
    async def update_product(
        context: Context, *, product_id: int, input: ProductUpdateInput
    ) -> Row[Any]:
        """Change a product, publish or unpublish it. Staff only."""
        return await catalog.update_product(
            context.db,
            product_id=product_id,
            name=_kept(input.name),
            slug=_kept(input.slug),
            description=_kept(input.description),
            category_id=_moved_pk(input.category_id, "Category", "category_id"),
            is_published=_kept(input.is_published),
        )

    # A full gallery is the fault of the image given: the whole input.
    @mutation(
        PRODUCT,
        STAFF,
        paths={"images": ["input"]},
        product_id=PRODUCT_ID,
        input=_input(ProductImageInput),
        scope=NOT_FOR_PARTNERS,
    )
    async def add_product_image(
        context: Context, *, product_id: int, input: ProductImageInput
    ) -> Row[Any]:
        """Add a picture to a product. Staff only."""
        return await catalog.add_product_image(
            context.db, product_id=product_id, url=input.url, alt=input.alt, position=input.position
        )

    @mutation(
        PRODUCT,
        STAFF,
        product_id=PRODUCT_ID,
        position=Argument(int, "The image's position."),
        scope=NOT_FOR_PARTNERS,
    )
    async def remove_product_image(context: Context, *, product_id: int, position: int) -> Row[Any]:
        """Remove a product's picture at a position. Staff only."""
        return await catalog.remove_product_image(
            context.db, product_id=product_id, position=position
        )

    @mutation(
        VARIANT, STAFF, product_id=PRODUCT_ID, input=_input(VariantInput), scope=NOT_FOR_PARTNERS
    )
    async def create_variant(context: Context, *, product_id: int, input: VariantInput) -> Row[Any]:
        """Add a variant to a product; its price range follows. Staff only."""
        return await catalog.create_variant(
            context.db,
            product_id=product_id,
            sku=input.sku,
            name=input.name,
            price=input.price,
            currency=context.settings.currency,
            attributes=input.attributes,
            stock=input.stock,
        )

    @mutation(
        VARIANT,
        STAFF,
        variant_id=THE_VARIANT,
        input=_input(VariantUpdateInput),
        scope=NOT_FOR_PARTNERS,
    )
    async def update_variant(
        context: Context, *, variant_id: int, input: VariantUpdateInput
    ) -> Row[Any]:
        """Change a variant; its product's price range follows. Staff only."""
        return await catalog.update_variant(
            context.db,
            variant_id=variant_id,
            currency=context.settings.currency,
            sku=_kept(input.sku),
            name=_kept(input.name),
            price=_kept(input.price),
            attributes=_kept(input.attributes),
        )

    @mutation(
        VARIANT,
        STAFF,
        variant_id=VARIANT_ID,
        quantity=Argument(int, "Units in stock, 0 or more."),
        scope=NOT_FOR_PARTNERS,
    )
    async def set_stock(context: Context, *, variant_id: int, quantity: int) -> Row[Any]:
        """Set a variant's stock. Staff only."""
        return await catalog.set_stock(context.db, variant_id=variant_id, quantity=quantity)

    @mutation(
        VARIANT,
        STAFF,
        variant_id=VARIANT_ID,
        delta=Argument(int, "Units to add; negative to remove."),
        scope=NOT_FOR_PARTNERS,
    )
    async def adjust_stock(context: Context, *, variant_id: int, delta: int) -> Row[Any]:
        """Add to (or, negative, take from) a variant's stock; OUT_OF_STOCK rather than going below zero. Staff only."""
        return await catalog.adjust_stock(context.db, variant_id=variant_id, delta=delta)


@strawberry.type
class ReviewMutation:
    """Reviews: written and changed by their author; deleted by the author or staff."""

    @mutation(REVIEW, SIGNED_IN, input=_input(ReviewInput), scope=NOT_FOR_PARTNERS)
    async def create_review(context: Context, *, input: ReviewInput) -> Row[Any]:
        """Review a product (one review per customer and product)."""
        return await catalog.create_review(
            context.db,
            author_id=_signed_in(context),
            product_id=decode_id_of(input.product_id, "Product", field="product_id"),
            rating=input.rating,
            title=input.title,
            body=input.body,
            include_unpublished=context.viewer.is_staff,
        )

    @mutation(
        REVIEW,
        SIGNED_IN,
        review_id=THE_REVIEW,
        input=_input(ReviewUpdateInput),
        scope=NOT_FOR_PARTNERS,
    )
    async def update_review(
        context: Context, *, review_id: int, input: ReviewUpdateInput
    ) -> Row[Any]:
        """Change your review."""
        return await catalog.update_review(
            context.db,
            review_id=review_id,
            author_id=_signed_in(context),
            rating=_kept(input.rating),
            title=_kept(input.title),
            body=_kept(input.body),
            include_unpublished=context.viewer.is_staff,
        )

    @mutation(REVIEW, SIGNED_IN, review_id=THE_REVIEW, scope=NOT_FOR_PARTNERS)
    async def delete_review(context: Context, *, review_id: int) -> Row[Any]:
        """Delete a review: your own, or any review when you are staff (moderation)."""
        return await catalog.delete_review(
            context.db,
            review_id=review_id,
            viewer_id=_signed_in(context),
            moderator=context.viewer.is_staff,
        )


def _signed_in(context: Context) -> int:
    user_id = context.viewer.user_id
    assert user_id is not None  # IsAuthenticated ran first
    return user_id
