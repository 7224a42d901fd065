"""Root catalog fields: product, products, category, categories."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.loaders.catalog import ROOT_PARENT
from app.platform.errors import InvalidInput
from app.platform.global_ids import decode_id_of
from app.schema.catalog import Category, Product, ProductConnection
from app.schema.listing import FilterArgument, SortArgument
from app.schema.relay import After, Before, First, Last, Paging
from app.schema.scopes import CATALOG

ById = Annotated[strawberry.ID | None, strawberry.argument(description="Global ID.")]
BySlug = Annotated[str | None, strawberry.argument(description="Slug.")]


def _one_of(id: strawberry.ID | None, slug: str | None) -> None:
    if (id is None) == (slug is None):
        raise InvalidInput("Pass exactly one of `id` or `slug`")


@strawberry.type
class CatalogQuery:
    """Catalog reads."""

    @strawberry.field(
        description="A published product by ID or slug; null if there is none.", metadata=CATALOG
    )
    async def product(
        self, info: strawberry.Info, id: ById = None, slug: BySlug = None
    ) -> Product | None:
        _one_of(id, slug)
        loaders = info.context.loaders
        if id is not None:
            row = await loaders.product_by_id.load(decode_id_of(id, "Product"))
        else:
            row = await loaders.product_by_slug.load(slug)
        return Product.from_row(row) if row is not None else None

    @strawberry.field(
        description="Published products, filtered, sorted and paged.", metadata=CATALOG
    )
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
            info, None, filter, sort_by, Paging(first, after, last, before)
        )

    @strawberry.field(
        description="A category by ID or slug; null if there is none.", metadata=CATALOG
    )
    async def category(
        self, info: strawberry.Info, id: ById = None, slug: BySlug = None
    ) -> Category | None:
        _one_of(id, slug)
        loaders = info.context.loaders
        if id is not None:
            row = await loaders.category_by_id.load(decode_id_of(id, "Category"))
        else:
            row = await loaders.category_by_slug.load(slug)
        return Category.from_row(row) if row is not None else None

    @strawberry.field(description="The root categories, in display order.", metadata=CATALOG)
    async def categories(self, info: strawberry.Info) -> list[Category]:
        rows = await info.context.loaders.categories_by_parent_id.load(ROOT_PARENT)
        return [Category.from_row(row) for row in rows]
