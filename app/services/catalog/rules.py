"""Shared rules of the catalog services: input checks, unique violations, derived columns."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Float, Row, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.loaders.base import table_of
from app.models import Category, Product, ProductImage, ProductVariant, Review
from app.platform.errors import DomainError, ErrorKind, InvalidInput, NotFound
from app.platform.money import to_minor
from app.services.locking import lock_owner

categories = table_of(Category)
products = table_of(Product)
variants = table_of(ProductVariant)
images = table_of(ProductImage)
reviews = table_of(Review)

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 200


class Unchanged(Enum):
    """The type of UNCHANGED: an update argument that was not given."""

    TOKEN = "UNCHANGED"


UNCHANGED: Final = Unchanged.TOKEN


def text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    """A trimmed text value within `max_length`; REQUIRED when empty and required."""
    trimmed = value.strip()
    if required and not trimmed:
        raise DomainError("This value must not be empty", field=field, kind=ErrorKind.REQUIRED)
    if len(trimmed) > max_length:
        raise DomainError(f"This value must be at most {max_length} characters", field=field)
    return trimmed


def slug(value: str, *, field: str, max_length: int) -> str:
    """A valid slug: lower-case letters and digits in words joined by single hyphens."""
    value = value.strip()
    if not SLUG_PATTERN.fullmatch(value) or len(value) > max_length:
        raise DomainError(
            f"A slug is lower-case letters and digits joined by hyphens, at most {max_length} characters",
            field=field,
        )
    return value


def sku(value: str, *, field: str) -> str:
    """A valid SKU: letters, digits, '.', '_', '/', '-', at most 64 characters."""
    value = value.strip()
    if not SKU_PATTERN.fullmatch(value) or len(value) > 64:
        raise DomainError(
            "A SKU is letters, digits, '.', '_', '/' or '-' (starting with a letter or digit), at most 64 characters",
            field=field,
        )
    return value


def price(amount: Decimal, currency: str, *, field: str) -> int:
    """A price in minor units of the shop currency; INVALID when negative or too precise."""
    try:
        return to_minor(amount, currency, field=field)
    except InvalidInput as error:
        raise InvalidInput(error.message, field=field) from None


def attributes(value: Any, *, field: str) -> dict[str, Any]:
    """A flat JSON object of strings, numbers and booleans."""
    if not isinstance(value, dict):
        raise DomainError("Attributes must be a JSON object", field=field)
    if len(value) > MAX_ATTRIBUTES:
        raise DomainError(f"At most {MAX_ATTRIBUTES} attributes are allowed", field=field)
    for key, item in value.items():
        if not key.strip() or len(key) > MAX_ATTRIBUTE_TEXT:
            raise DomainError(
                f"Attribute names must be 1 to {MAX_ATTRIBUTE_TEXT} characters", field=field
            )
        if not isinstance(item, str | int | float | bool) or (
            isinstance(item, str) and len(item) > MAX_ATTRIBUTE_TEXT
        ):
            raise DomainError(
                f"Attribute {key!r} must be a string (at most {MAX_ATTRIBUTE_TEXT} characters), a number or a boolean",
                field=field,
            )
    return dict(value)


def image_url(value: str, *, field: str) -> str:
    """An absolute http(s) URL of at most 500 characters."""
    value = value.strip()
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(value) > 500
        or any(ch.isspace() for ch in value)
    ):
        raise DomainError(
            "The URL must be an absolute http:// or https:// URL of at most 500 characters",
            field=field,
        )
    return value


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether the database refused a duplicate of a unique value."""
    original = error.orig
    if (
        getattr(original, "sqlstate", None) == "23505"
        or getattr(original, "pgcode", None) == "23505"
    ):
        return True
    message = str(original)
    return "UNIQUE constraint failed" in message or "duplicate key value" in message


async def lock_product(
    connection: AsyncConnection, product_id: int, *, field: str, visible_only: bool = False
) -> Row[Any]:
    """The product row, locked until commit so derived columns are recomputed one writer at a time."""
    row = await lock_owner(connection, products, product_id)  # SQLite too: see locking.py
    if row is None or (visible_only and not row.is_published):
        raise NotFound("No such product", field=field)
    return row


async def refresh_price_range(connection: AsyncConnection, product_id: int, now: datetime) -> None:
    """Recompute a product's price range from its variants (as the seed computes it)."""
    of_product = variants.c.product_id == product_id
    await connection.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(
            price_min_minor=select(func.min(variants.c.price_minor))
            .where(of_product)
            .scalar_subquery(),
            price_max_minor=select(func.max(variants.c.price_minor))
            .where(of_product)
            .scalar_subquery(),
            updated_at=now,
        )
    )


async def refresh_rating(connection: AsyncConnection, product_id: int, now: datetime) -> None:
    """Recompute a product's review count and average rating (0.0 without reviews)."""
    of_product = reviews.c.product_id == product_id
    await connection.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(
            rating_count=select(func.count())
            .select_from(reviews)
            .where(of_product)
            .scalar_subquery(),
            rating_average=select(func.coalesce(func.avg(cast(reviews.c.rating, Float)), 0.0))
            .where(of_product)
            .scalar_subquery(),
            updated_at=now,
        )
    )


async def touch_product(connection: AsyncConnection, product_id: int, now: datetime) -> None:
    """Mark a product as changed."""
    await connection.execute(
        update(products).where(products.c.id == product_id).values(updated_at=now)
    )


async def free_slug(
    connection: AsyncConnection, column: ColumnElement[str], base: str, *, max_length: int
) -> str:
    """`base`, or `base-2`, `base-3`... whichever is not taken yet (for slugs made from names)."""
    base = base[: max_length - 8].strip("-") or "item"
    taken = set(
        (
            await connection.execute(
                select(column).where(or_(column == base, column.like(f"{base}-%")))
            )
        ).scalars()
    )
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
