"""Catalog mutations: staff manage categories, products, variants, images and stock; customers review.

Each mutation is its arguments, one service call and a payload (app.resolvers.mutations);
`arguments=` says which domain fields are top-level arguments rather than input fields.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

import strawberry

from app.platform.global_ids import decode_id_of
from app.resolvers.mutations import mutate, payload_of
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
from app.schema.permissions import IsAuthenticated, IsStaff
from app.services import catalog
from app.services.catalog import UNCHANGED, Unchanged

T = TypeVar("T")
WHAT = "What to create or change."
STAFF = [IsAuthenticated, IsStaff]

ProductId = Annotated[strawberry.ID, strawberry.argument(description="The product's global ID.")]
VariantId = Annotated[strawberry.ID, strawberry.argument(description="The variant's global ID.")]

CATEGORY = payload_of(CategoryPayload, "category", Category.from_row)
PRODUCT = payload_of(ProductPayload, "product", Product.from_row)
VARIANT = payload_of(VariantPayload, "variant", ProductVariant.from_row)
REVIEW = payload_of(ReviewPayload, "review", Review.from_row)


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

    @strawberry.mutation(description="Add a category. Staff only.", permission_classes=STAFF)
    async def create_category(
        self,
        info: strawberry.Info,
        input: Annotated[CategoryInput, strawberry.argument(description=WHAT)],
    ) -> CategoryPayload:
        db = info.context.db
        return await mutate(
            CATEGORY,
            lambda: catalog.create_category(
                db,
                name=input.name,
                slug=input.slug,
                description=input.description,
                parent_id=_optional_pk(input.parent_id, "Category", "parent_id"),
                position=input.position,
            ),
        )

    @strawberry.mutation(description="Change a category. Staff only.", permission_classes=STAFF)
    async def update_category(
        self,
        info: strawberry.Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The category's global ID.")],
        input: Annotated[CategoryUpdateInput, strawberry.argument(description=WHAT)],
    ) -> CategoryPayload:
        db = info.context.db
        return await mutate(
            CATEGORY,
            lambda: catalog.update_category(
                db,
                category_id=decode_id_of(id, "Category", field="category_id"),
                name=_kept(input.name),
                slug=_kept(input.slug),
                description=_cleared(input.description),
                parent_id=_moved_pk(input.parent_id, "Category", "parent_id"),
                position=_kept(input.position),
            ),
            arguments={"category_id": "id"},
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
        return await mutate(
            PRODUCT,
            lambda: catalog.create_product(
                context.db,
                name=input.name,
                currency=context.settings.currency,
                slug=input.slug,
                description=input.description,
                category_id=_optional_pk(input.category_id, "Category", "category_id"),
                is_published=input.is_published,
            ),
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
        return await mutate(
            PRODUCT,
            lambda: catalog.update_product(
                db,
                product_id=decode_id_of(id, "Product", field="product_id"),
                name=_kept(input.name),
                slug=_kept(input.slug),
                description=_kept(input.description),
                category_id=_moved_pk(input.category_id, "Category", "category_id"),
                is_published=_kept(input.is_published),
            ),
            arguments={"product_id": "id"},
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
        return await mutate(
            PRODUCT,
            lambda: catalog.add_product_image(
                db,
                product_id=decode_id_of(product_id, "Product", field="product_id"),
                url=input.url,
                alt=input.alt,
                position=input.position,
            ),
            # A full gallery is the fault of the image given, the whole input.
            arguments={"product_id": "productId", "images": "input"},
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
        return await mutate(
            PRODUCT,
            lambda: catalog.remove_product_image(
                db,
                product_id=decode_id_of(product_id, "Product", field="product_id"),
                position=position,
            ),
            arguments={"product_id": "productId", "position": "position"},
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
        return await mutate(
            VARIANT,
            lambda: catalog.create_variant(
                context.db,
                product_id=decode_id_of(product_id, "Product", field="product_id"),
                sku=input.sku,
                name=input.name,
                price=input.price,
                currency=context.settings.currency,
                attributes=input.attributes,
                stock=input.stock,
            ),
            arguments={"product_id": "productId"},
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
        return await mutate(
            VARIANT,
            lambda: catalog.update_variant(
                context.db,
                variant_id=decode_id_of(id, "ProductVariant", field="variant_id"),
                currency=context.settings.currency,
                sku=_kept(input.sku),
                name=_kept(input.name),
                price=_kept(input.price),
                attributes=_kept(input.attributes),
            ),
            arguments={"variant_id": "id"},
        )

    @strawberry.mutation(description="Set a variant's stock. Staff only.", permission_classes=STAFF)
    async def set_stock(
        self,
        info: strawberry.Info,
        variant_id: VariantId,
        quantity: Annotated[int, strawberry.argument(description="Units in stock, 0 or more.")],
    ) -> VariantPayload:
        db = info.context.db
        return await mutate(
            VARIANT,
            lambda: catalog.set_stock(
                db,
                variant_id=decode_id_of(variant_id, "ProductVariant", field="variant_id"),
                quantity=quantity,
            ),
            arguments={"variant_id": "variantId", "quantity": "quantity"},
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
        return await mutate(
            VARIANT,
            lambda: catalog.adjust_stock(
                db,
                variant_id=decode_id_of(variant_id, "ProductVariant", field="variant_id"),
                delta=delta,
            ),
            arguments={"variant_id": "variantId", "delta": "delta"},
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
        return await mutate(
            REVIEW,
            lambda: catalog.create_review(
                context.db,
                author_id=context.viewer.user_id,
                product_id=decode_id_of(input.product_id, "Product", field="product_id"),
                rating=input.rating,
                title=input.title,
                body=input.body,
                include_unpublished=context.viewer.is_staff,
            ),
        )

    @strawberry.mutation(description="Change your review.", permission_classes=[IsAuthenticated])
    async def update_review(
        self,
        info: strawberry.Info,
        id: ReviewId,
        input: Annotated[ReviewUpdateInput, strawberry.argument(description=WHAT)],
    ) -> ReviewPayload:
        context = info.context
        return await mutate(
            REVIEW,
            lambda: catalog.update_review(
                context.db,
                review_id=decode_id_of(id, "Review", field="review_id"),
                author_id=context.viewer.user_id,
                rating=_kept(input.rating),
                title=_kept(input.title),
                body=_kept(input.body),
                include_unpublished=context.viewer.is_staff,
            ),
            arguments={"review_id": "id"},
        )

    @strawberry.mutation(
        description="Delete a review: your own, or any review when you are staff (moderation).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_review(self, info: strawberry.Info, id: ReviewId) -> ReviewPayload:
        context = info.context
        return await mutate(
            REVIEW,
            lambda: catalog.delete_review(
                context.db,
                review_id=decode_id_of(id, "Review", field="review_id"),
                viewer_id=context.viewer.user_id,
                moderator=context.viewer.is_staff,
            ),
            arguments={"review_id": "id"},
        )
