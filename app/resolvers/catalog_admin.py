"""Catalog mutations: staff manage categories, products, variants, images and stock; customers review."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import strawberry
from sqlalchemy import Row

from app.platform.errors import InvalidInput
from app.platform.global_ids import decode_id_of
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
from app.schema.errors import UserError
from app.schema.permissions import IsAuthenticated, IsStaff
from app.services import catalog
from app.services.catalog import UNCHANGED, Unchanged
from app.services.errors import DomainError

T = TypeVar("T")
WHAT = "What to create or change."
STAFF = [IsAuthenticated, IsStaff]

ProductId = Annotated[strawberry.ID, strawberry.argument(description="The product's global ID.")]
VariantId = Annotated[strawberry.ID, strawberry.argument(description="The variant's global ID.")]


def _pk(value: str, type_name: str, field: list[str]) -> int:
    """A global ID's primary key; a malformed ID is a userError, not a request error."""
    try:
        return decode_id_of(value, type_name)
    except InvalidInput as error:
        raise DomainError(error.message, field=field) from None


def _kept(value: T | None) -> T | Unchanged:
    """An omitted or null update field of a non-nullable value: keep the current value."""
    return UNCHANGED if value is None or value is strawberry.UNSET else value


def _cleared(value: T | None) -> T | Unchanged | None:
    """An omitted update field keeps the value; null clears it."""
    return UNCHANGED if value is strawberry.UNSET else value


async def _attempt(
    call: Callable[[], Awaitable[Row[Any]]],
) -> tuple[Row[Any] | None, list[UserError]]:
    """Run a service call; expected failures come back as userErrors."""
    try:
        return await call(), []
    except DomainError as error:
        return None, [UserError.from_domain(error)]


def _category_payload(result: tuple[Row[Any] | None, list[UserError]]) -> CategoryPayload:
    row, errors = result
    return CategoryPayload(category=Category.from_row(row) if row else None, user_errors=errors)


def _product_payload(result: tuple[Row[Any] | None, list[UserError]]) -> ProductPayload:
    row, errors = result
    return ProductPayload(product=Product.from_row(row) if row else None, user_errors=errors)


def _variant_payload(result: tuple[Row[Any] | None, list[UserError]]) -> VariantPayload:
    row, errors = result
    return VariantPayload(variant=ProductVariant.from_row(row) if row else None, user_errors=errors)


def _review_payload(result: tuple[Row[Any] | None, list[UserError]]) -> ReviewPayload:
    row, errors = result
    return ReviewPayload(review=Review.from_row(row) if row else None, user_errors=errors)


def _parent(value: strawberry.ID | None) -> int | None:
    return _pk(value, "Category", ["input", "parentId"]) if value is not None else None


def _category_of(value: strawberry.ID | None) -> int | None:
    return _pk(value, "Category", ["input", "categoryId"]) if value is not None else None


@strawberry.type
class CatalogAdminMutation:
    """Catalog management: staff only."""

    @strawberry.mutation(description="Add a category. Staff only.", permission_classes=STAFF)
    async def create_category(
        self,
        info: strawberry.Info,
        input: Annotated[CategoryInput, strawberry.argument(description=WHAT)],
    ) -> CategoryPayload:
        db = info.context.db
        return _category_payload(
            await _attempt(
                lambda: catalog.create_category(
                    db,
                    name=input.name,
                    slug=input.slug,
                    description=input.description,
                    parent_id=_parent(input.parent_id),
                    position=input.position,
                )
            )
        )

    @strawberry.mutation(description="Change a category. Staff only.", permission_classes=STAFF)
    async def update_category(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The category's global ID.")],
        input: Annotated[CategoryUpdateInput, strawberry.argument(description=WHAT)],
    ) -> CategoryPayload:
        db = info.context.db
        return _category_payload(
            await _attempt(
                lambda: catalog.update_category(
                    db,
                    category_id=_pk(id, "Category", ["id"]),
                    name=_kept(input.name),
                    slug=_kept(input.slug),
                    description=_cleared(input.description),
                    parent_id=UNCHANGED
                    if input.parent_id is strawberry.UNSET
                    else _parent(input.parent_id),
                    position=_kept(input.position),
                )
            )
        )

    @strawberry.mutation(
        description="Add a product (without variants; unpublished unless isPublished). Staff only.",
        permission_classes=STAFF,
    )
    async def create_product(
        self,
        info: strawberry.Info,
        input: Annotated[ProductCreateInput, strawberry.argument(description=WHAT)],
    ) -> ProductPayload:
        context = info.context
        return _product_payload(
            await _attempt(
                lambda: catalog.create_product(
                    context.db,
                    name=input.name,
                    currency=context.settings.currency,
                    slug=input.slug,
                    description=input.description,
                    category_id=_category_of(input.category_id),
                    is_published=input.is_published,
                )
            )
        )

    @strawberry.mutation(
        description="Change a product, publish or unpublish it. Staff only.",
        permission_classes=STAFF,
    )
    async def update_product(
        self,
        info: strawberry.Info,
        id: ProductId,
        input: Annotated[ProductUpdateInput, strawberry.argument(description=WHAT)],
    ) -> ProductPayload:
        db = info.context.db
        return _product_payload(
            await _attempt(
                lambda: catalog.update_product(
                    db,
                    product_id=_pk(id, "Product", ["id"]),
                    name=_kept(input.name),
                    slug=_kept(input.slug),
                    description=_kept(input.description),
                    category_id=UNCHANGED
                    if input.category_id is strawberry.UNSET
                    else _category_of(input.category_id),
                    is_published=_kept(input.is_published),
                )
            )
        )

    @strawberry.mutation(
        description="Add a picture to a product. Staff only.", permission_classes=STAFF
    )
    async def add_product_image(
        self,
        info: strawberry.Info,
        product_id: ProductId,
        input: Annotated[ProductImageInput, strawberry.argument(description=WHAT)],
    ) -> ProductPayload:
        db = info.context.db
        return _product_payload(
            await _attempt(
                lambda: catalog.add_product_image(
                    db,
                    product_id=_pk(product_id, "Product", ["productId"]),
                    url=input.url,
                    alt=input.alt,
                    position=input.position,
                )
            )
        )

    @strawberry.mutation(
        description="Remove a product's picture at a position. Staff only.",
        permission_classes=STAFF,
    )
    async def remove_product_image(
        self,
        info: strawberry.Info,
        product_id: ProductId,
        position: Annotated[int, strawberry.argument(description="The image's position.")],
    ) -> ProductPayload:
        db = info.context.db
        return _product_payload(
            await _attempt(
                lambda: catalog.remove_product_image(
                    db, product_id=_pk(product_id, "Product", ["productId"]), position=position
                )
            )
        )

    @strawberry.mutation(
        description="Add a variant to a product; its price range follows. Staff only.",
        permission_classes=STAFF,
    )
    async def create_variant(
        self,
        info: strawberry.Info,
        product_id: ProductId,
        input: Annotated[VariantInput, strawberry.argument(description=WHAT)],
    ) -> VariantPayload:
        context = info.context
        return _variant_payload(
            await _attempt(
                lambda: catalog.create_variant(
                    context.db,
                    product_id=_pk(product_id, "Product", ["productId"]),
                    sku=input.sku,
                    name=input.name,
                    price=input.price,
                    currency=context.settings.currency,
                    attributes=input.attributes,
                    stock=input.stock,
                )
            )
        )

    @strawberry.mutation(
        description="Change a variant; its product's price range follows. Staff only.",
        permission_classes=STAFF,
    )
    async def update_variant(
        self,
        info: strawberry.Info,
        id: VariantId,
        input: Annotated[VariantUpdateInput, strawberry.argument(description=WHAT)],
    ) -> VariantPayload:
        context = info.context
        return _variant_payload(
            await _attempt(
                lambda: catalog.update_variant(
                    context.db,
                    variant_id=_pk(id, "ProductVariant", ["id"]),
                    currency=context.settings.currency,
                    sku=_kept(input.sku),
                    name=_kept(input.name),
                    price=_kept(input.price),
                    attributes=_kept(input.attributes),
                )
            )
        )

    @strawberry.mutation(description="Set a variant's stock. Staff only.", permission_classes=STAFF)
    async def set_stock(
        self,
        info: strawberry.Info,
        variant_id: VariantId,
        quantity: Annotated[int, strawberry.argument(description="Units in stock, 0 or more.")],
    ) -> VariantPayload:
        db = info.context.db
        return _variant_payload(
            await _attempt(
                lambda: catalog.set_stock(
                    db,
                    variant_id=_pk(variant_id, "ProductVariant", ["variantId"]),
                    quantity=quantity,
                )
            )
        )

    @strawberry.mutation(
        description="Add to (or, negative, take from) a variant's stock; OUT_OF_STOCK rather than going below zero. Staff only.",
        permission_classes=STAFF,
    )
    async def adjust_stock(
        self,
        info: strawberry.Info,
        variant_id: VariantId,
        delta: Annotated[int, strawberry.argument(description="Units to add; negative to remove.")],
    ) -> VariantPayload:
        db = info.context.db
        return _variant_payload(
            await _attempt(
                lambda: catalog.adjust_stock(
                    db, variant_id=_pk(variant_id, "ProductVariant", ["variantId"]), delta=delta
                )
            )
        )


ReviewId = Annotated[strawberry.ID, strawberry.argument(description="The review's global ID.")]


@strawberry.type
class ReviewMutation:
    """Reviews: written and changed by their author; deleted by the author or staff."""

    @strawberry.mutation(
        description="Review a product (one review per customer and product).",
        permission_classes=[IsAuthenticated],
    )
    async def create_review(
        self,
        info: strawberry.Info,
        input: Annotated[ReviewInput, strawberry.argument(description=WHAT)],
    ) -> ReviewPayload:
        context = info.context
        return _review_payload(
            await _attempt(
                lambda: catalog.create_review(
                    context.db,
                    author_id=context.viewer.user_id,
                    product_id=_pk(input.product_id, "Product", ["input", "productId"]),
                    rating=input.rating,
                    title=input.title,
                    body=input.body,
                    include_unpublished=context.viewer.is_staff,
                )
            )
        )

    @strawberry.mutation(description="Change your review.", permission_classes=[IsAuthenticated])
    async def update_review(
        self,
        info: strawberry.Info,
        id: ReviewId,
        input: Annotated[ReviewUpdateInput, strawberry.argument(description=WHAT)],
    ) -> ReviewPayload:
        context = info.context
        return _review_payload(
            await _attempt(
                lambda: catalog.update_review(
                    context.db,
                    review_id=_pk(id, "Review", ["id"]),
                    author_id=context.viewer.user_id,
                    rating=_kept(input.rating),
                    title=_kept(input.title),
                    body=_kept(input.body),
                    include_unpublished=context.viewer.is_staff,
                )
            )
        )

    @strawberry.mutation(
        description="Delete a review: your own, or any review when you are staff (moderation).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_review(self, info: strawberry.Info, id: ReviewId) -> ReviewPayload:
        context = info.context
        return _review_payload(
            await _attempt(
                lambda: catalog.delete_review(
                    context.db,
                    review_id=_pk(id, "Review", ["id"]),
                    viewer_id=context.viewer.user_id,
                    moderator=context.viewer.is_staff,
                )
            )
        )
