"""Creating and changing variants, and their stock; every price change updates the product's range."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models.base import utcnow
from app.platform.errors import AlreadyExists, DomainError, ErrorKind, NotFound
from app.platform.events import Change
from app.services.catalog import rules
from app.services.catalog.rules import UNCHANGED, Unchanged, variants

NAME_MAX = 200
MAX_STOCK = 2**31 - 1


async def create_variant(
    db: Database,
    *,
    product_id: int,
    sku: str,
    name: str,
    price: Decimal,
    currency: str,
    attributes: Any = None,
    stock: int = 0,
) -> Row[Any]:
    """Add a variant at the end of a product's list and recompute the product's price range."""
    sku = rules.sku(sku, field="sku")
    name = rules.text(name, field="name", max_length=NAME_MAX)
    price_minor = rules.price(price, currency, field="price")
    attrs = rules.attributes({} if attributes is None else attributes, field="attributes")
    _check_quantity(stock, field="stock")
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            product = await rules.lock_product(connection, product_id, field="product_id")
            if product.currency != currency:
                raise DomainError(
                    f"The product is priced in {product.currency}, not {currency}",
                    field="price",
                )
            await _refuse_taken_sku(connection, sku)
            highest = (
                await connection.execute(
                    select(func.max(variants.c.position)).where(variants.c.product_id == product_id)
                )
            ).scalar_one_or_none()
            result = await connection.execute(
                insert(variants)
                .values(
                    product_id=product_id,
                    sku=sku,
                    name=name,
                    price_minor=price_minor,
                    currency=currency,
                    stock=stock,
                    attributes=attrs,
                    position=0 if highest is None else int(highest) + 1,
                )
                .returning(*variants.c)
            )
            row = result.one()
            await rules.refresh_price_range(connection, product_id, utcnow())
            work.record(*variant_changes(row.id, product_id))
            return row
    except IntegrityError as error:
        raise _translated(error) from None


async def update_variant(
    db: Database,
    *,
    variant_id: int,
    currency: str,
    sku: str | Unchanged = UNCHANGED,
    name: str | Unchanged = UNCHANGED,
    price: Decimal | Unchanged = UNCHANGED,
    attributes: Any = UNCHANGED,
) -> Row[Any]:
    """Change a variant; a new price recomputes the product's price range."""
    values: dict[str, Any] = {}
    if not isinstance(sku, Unchanged):
        values["sku"] = rules.sku(sku, field="sku")
    if not isinstance(name, Unchanged):
        values["name"] = rules.text(name, field="name", max_length=NAME_MAX)
    if not isinstance(price, Unchanged):
        values["price_minor"] = rules.price(price, currency, field="price")
        values["currency"] = currency
    if not isinstance(attributes, Unchanged):
        values["attributes"] = rules.attributes(attributes, field="attributes")
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            current = await _variant(connection, variant_id)
            await rules.lock_product(connection, current.product_id, field="variant_id")
            if "sku" in values and values["sku"] != current.sku:
                await _refuse_taken_sku(connection, values["sku"])
            if not values:
                return current
            result = await connection.execute(
                update(variants)
                .where(variants.c.id == variant_id)
                .values(**values)
                .returning(*variants.c)
            )
            row = result.one()
            await rules.refresh_price_range(connection, current.product_id, utcnow())
            work.record(*variant_changes(variant_id, current.product_id))
            return row
    except IntegrityError as error:
        raise _translated(error) from None


async def set_stock(db: Database, *, variant_id: int, quantity: int) -> Row[Any]:
    """Set a variant's stock to `quantity` (0 or more)."""
    _check_quantity(quantity, field="quantity")
    async with db.unit_of_work() as work:
        connection = work.connection
        result = await connection.execute(
            update(variants)
            .where(variants.c.id == variant_id)
            .values(stock=quantity)
            .returning(*variants.c)
        )
        row = result.first()
        if row is None:
            raise NotFound("No such variant", field="variant_id")
        await rules.touch_product(connection, row.product_id, utcnow())
        work.record(*variant_changes(variant_id, row.product_id))
        return row


async def adjust_stock(db: Database, *, variant_id: int, delta: int) -> Row[Any]:
    """Add `delta` (negative: remove) to a variant's stock; never below zero, also under concurrency."""
    if abs(delta) > MAX_STOCK:
        raise DomainError("The adjustment is too large", field="delta")
    async with db.unit_of_work() as work:
        connection = work.connection
        # One conditional UPDATE: the row lock makes concurrent adjustments queue, and each
        # re-checks the condition against the stock the previous one left.
        # The bound is written as `stock >= -delta` (stock + delta >= 0) so no sum can overflow.
        within = variants.c.stock >= -delta if delta < 0 else variants.c.stock <= MAX_STOCK - delta
        result = await connection.execute(
            update(variants)
            .where(variants.c.id == variant_id, within)
            .values(stock=variants.c.stock + delta)
            .returning(*variants.c)
        )
        row = result.first()
        if row is None:
            current = await _variant(connection, variant_id)
            if current.stock + delta < 0:
                raise DomainError(
                    f"Only {current.stock} units are in stock",
                    field="delta",
                    kind=ErrorKind.OUT_OF_STOCK,
                )
            raise DomainError("The stock would be too large", field="delta")
        await rules.touch_product(connection, row.product_id, utcnow())
        work.record(*variant_changes(variant_id, row.product_id))
        return row


def variant_changes(variant_id: int, product_id: int) -> tuple[Change, ...]:
    """A variant, its product (price range, variant list) and listings (price, stock) changed."""
    return (
        Change("ProductVariant", variant_id),
        Change("Product", product_id),
        Change.listing("Product"),
    )


async def _variant(connection: AsyncConnection, variant_id: int) -> Row[Any]:
    row = (await connection.execute(select(variants).where(variants.c.id == variant_id))).first()
    if row is None:
        raise NotFound("No such variant", field="variant_id")
    return row


async def _refuse_taken_sku(connection: AsyncConnection, sku: str) -> None:
    found = await connection.execute(select(variants.c.id).where(variants.c.sku == sku))
    if found.first() is not None:
        raise AlreadyExists("Another variant has this SKU", field="sku")


def _check_quantity(quantity: int, *, field: str) -> None:
    if not 0 <= quantity <= MAX_STOCK:
        raise DomainError("The quantity must be between 0 and 2147483647", field=field)


def _translated(error: IntegrityError) -> Exception:
    if rules.is_unique_violation(error):
        return AlreadyExists("Another variant has this SKU", field="sku")
    return error
