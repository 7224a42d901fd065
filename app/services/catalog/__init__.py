"""Catalog management: categories, products, images, variants, stock and reviews.

Every function opens its own transaction, raises DomainErrors for expected
failures and keeps the products' derived columns (price range, rating count and
average, updated_at) right in the same transaction as the change.
"""

from __future__ import annotations

from app.services.catalog.categories import create_category, update_category
from app.services.catalog.products import (
    add_product_image,
    create_product,
    remove_product_image,
    update_product,
)
from app.services.catalog.reviews import create_review, delete_review, update_review
from app.services.catalog.rules import UNCHANGED, Unchanged
from app.services.catalog.variants import (
    adjust_stock,
    create_variant,
    set_stock,
    update_variant,
)

__all__ = [
    "UNCHANGED",
    "Unchanged",
    "add_product_image",
    "adjust_stock",
    "create_category",
    "create_product",
    "create_review",
    "create_variant",
    "delete_review",
    "remove_product_image",
    "set_stock",
    "update_category",
    "update_product",
    "update_review",
    "update_variant",
]
