"""Generated catalogs for property tests: small alphabets and value sets, so sort keys tie often.

A catalog is plain data; `replace_catalog` wipes the catalog tables and writes it, with
the products' derived columns (price range, rating count and average) computed the way
the seed service computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import Category, Product, ProductImage, ProductVariant, Review

CURRENCY = "EUR"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# Names and descriptions share a tiny alphabet (with LIKE wildcards) so ties and matches happen.
ALPHABET = "aAb_% "
SEARCH_ALPHABET = "aAb_%"
PRICES_MINOR = [0, 99, 100, 1299, 1300]
STOCKS = [0, 0, 1, 7]
# A handful of instants, some with microseconds: created_at ties are common.
INSTANTS = [EPOCH + timedelta(seconds=s, microseconds=us) for s in (0, 1, 2) for us in (0, 250_000)]


@dataclass(frozen=True)
class GeneratedVariant:
    """One variant of a generated product."""

    price_minor: int
    stock: int


@dataclass(frozen=True)
class GeneratedReview:
    """One review of a generated product, by user `reviewer` (an index into the users)."""

    reviewer: int
    rating: int
    created_at: datetime


@dataclass(frozen=True)
class GeneratedProduct:
    """A generated product and its variants and reviews."""

    id: int
    name: str
    description: str
    category_id: int | None
    is_published: bool
    created_at: datetime
    variants: list[GeneratedVariant] = field(default_factory=list)
    reviews: list[GeneratedReview] = field(default_factory=list)

    @property
    def slug(self) -> str:
        """Slugs name the id, so a listing maps back to rows without decoding global IDs."""
        return f"p{self.id}"


@dataclass(frozen=True)
class GeneratedCategory:
    """A category; `parent_id` None for a root."""

    id: int
    parent_id: int | None
    position: int

    @property
    def slug(self) -> str:
        """A unique slug made from the id."""
        return f"c{self.id}"


@dataclass(frozen=True)
class GeneratedCatalog:
    """Categories in two levels and products that may sit in any of them (or none)."""

    categories: list[GeneratedCategory]
    products: list[GeneratedProduct]


def _derived(product: GeneratedProduct) -> dict[str, Any]:
    # As app/services/seed.py computes them.
    prices = [variant.price_minor for variant in product.variants]
    ratings = [review.rating for review in product.reviews]
    return {
        "price_min_minor": min(prices) if prices else None,
        "price_max_minor": max(prices) if prices else None,
        "rating_count": len(ratings),
        "rating_average": sum(ratings) / len(ratings) if ratings else 0.0,
    }


@st.composite
def categories(draw: st.DrawFn) -> list[GeneratedCategory]:
    """One to three roots with up to two children each."""
    made: list[GeneratedCategory] = []
    for root_position in range(draw(st.integers(1, 3))):
        root = GeneratedCategory(id=len(made) + 1, parent_id=None, position=root_position)
        made.append(root)
        for child_position in range(draw(st.integers(0, 2))):
            made.append(
                GeneratedCategory(id=len(made) + 1, parent_id=root.id, position=child_position)
            )
    return made


@st.composite
def catalogs(draw: st.DrawFn, *, reviewers: int, max_products: int = 25) -> GeneratedCatalog:
    """A random catalog whose reviews come from `reviewers` users (by index)."""
    tree = draw(categories())
    category_ids = [None, *(category.id for category in tree)]
    count = draw(st.integers(0, max_products))
    # Sparse ids in no particular insertion order: the tie-breaker must be the id.
    ids = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    products = []
    for product_id in ids:
        variants = draw(
            st.lists(
                st.builds(
                    GeneratedVariant,
                    price_minor=st.sampled_from(PRICES_MINOR),
                    stock=st.sampled_from(STOCKS),
                ),
                max_size=4,
            )
        )
        reviewer_ids = draw(
            st.lists(st.integers(0, reviewers - 1), max_size=min(5, reviewers), unique=True)
        )
        reviews = [
            GeneratedReview(
                reviewer=reviewer,
                rating=draw(st.integers(1, 5)),
                created_at=draw(st.sampled_from(INSTANTS)),
            )
            for reviewer in reviewer_ids
        ]
        products.append(
            GeneratedProduct(
                id=product_id,
                name=draw(st.text(ALPHABET, min_size=1, max_size=3)),
                description=draw(st.text(ALPHABET, max_size=4)),
                category_id=draw(st.sampled_from(category_ids)),
                is_published=draw(st.booleans()),
                created_at=draw(st.sampled_from(INSTANTS)),
                variants=variants,
                reviews=reviews,
            )
        )
    return GeneratedCatalog(categories=tree, products=products)


async def clear_catalog(connection: AsyncConnection) -> None:
    """Delete every catalog row (children before parents)."""
    for model in (Review, ProductImage, ProductVariant, Product):
        await connection.execute(delete(model))
    await connection.execute(delete(Category).where(Category.parent_id.is_not(None)))
    await connection.execute(delete(Category))


async def replace_catalog(
    connection: AsyncConnection, catalog: GeneratedCatalog, user_ids: list[int]
) -> None:
    """Make `catalog` the whole catalog; reviewer indexes map to `user_ids`."""
    await clear_catalog(connection)
    for level_is_root in (True, False):
        rows = [
            {
                "id": category.id,
                "parent_id": category.parent_id,
                "slug": category.slug,
                "name": f"Category {category.id}",
                "position": category.position,
                "created_at": EPOCH,
            }
            for category in catalog.categories
            if (category.parent_id is None) == level_is_root
        ]
        if rows:
            await connection.execute(insert(Category), rows)
    if not catalog.products:
        return
    await connection.execute(
        insert(Product),
        [
            {
                "id": product.id,
                "slug": product.slug,
                "name": product.name,
                "description": product.description,
                "category_id": product.category_id,
                "is_published": product.is_published,
                "currency": CURRENCY,
                "created_at": product.created_at,
                "updated_at": product.created_at,
                **_derived(product),
            }
            for product in catalog.products
        ],
    )
    variant_rows = [
        {
            "product_id": product.id,
            "sku": f"{product.slug}-{position}",
            "name": f"Variant {position}",
            "price_minor": variant.price_minor,
            "currency": CURRENCY,
            "stock": variant.stock,
            "attributes": {},
            "position": position,
        }
        for product in catalog.products
        for position, variant in enumerate(product.variants)
    ]
    if variant_rows:
        await connection.execute(insert(ProductVariant), variant_rows)
    review_rows = [
        {
            "product_id": product.id,
            "user_id": user_ids[review.reviewer],
            "rating": review.rating,
            "title": "A review",
            "body": "",
            "created_at": review.created_at,
        }
        for product in catalog.products
        for review in product.reviews
    ]
    if review_rows:
        await connection.execute(insert(Review), review_rows)
