"""Creating and changing products and their images."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models.base import utcnow
from app.platform.errors import AlreadyExists, DomainError, NotFound
from app.platform.events import Change
from app.services.catalog import rules
from app.services.catalog.rules import UNCHANGED, Unchanged, categories, images, products
from app.services.seed import slugify

SLUG_MAX = 200
NAME_MAX = 200
DESCRIPTION_MAX = 20_000
ALT_MAX = 300
MAX_IMAGES = 50


async def create_product(
    db: Database,
    *,
    name: str,
    currency: str,
    slug: str | None = None,
    description: str = "",
    category_id: int | None = None,
    is_published: bool = False,
) -> Row[Any]:
    """Add a product without variants; the slug defaults to one made from the name."""
    name = rules.text(name, field="name", max_length=NAME_MAX)
    description = rules.text(
        description, field="description", max_length=DESCRIPTION_MAX, required=False
    )
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            if category_id is not None:
                await _category_exists(connection, category_id)
            if slug is not None:
                chosen = rules.slug(slug, field="slug", max_length=SLUG_MAX)
                await _refuse_taken_slug(connection, chosen)
            else:
                chosen = await rules.free_slug(
                    connection, products.c.slug, slugify(name) or "product", max_length=SLUG_MAX
                )
            now = utcnow()
            result = await connection.execute(
                insert(products)
                .values(
                    name=name,
                    slug=chosen,
                    description=description,
                    category_id=category_id,
                    is_published=is_published,
                    currency=currency,
                    rating_count=0,
                    rating_average=0.0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*products.c)
            )
            row = result.one()
            work.record(Change("Product", row.id), Change.listing("Product"))
            return row
    except IntegrityError as error:
        raise _translated(error) from None


async def update_product(
    db: Database,
    *,
    product_id: int,
    name: str | Unchanged = UNCHANGED,
    slug: str | Unchanged = UNCHANGED,
    description: str | Unchanged = UNCHANGED,
    category_id: int | Unchanged | None = UNCHANGED,
    is_published: bool | Unchanged = UNCHANGED,
) -> Row[Any]:
    """Change a product's own fields (publishing and unpublishing included)."""
    values: dict[str, Any] = {}
    if not isinstance(name, Unchanged):
        values["name"] = rules.text(name, field="name", max_length=NAME_MAX)
    if not isinstance(slug, Unchanged):
        values["slug"] = rules.slug(slug, field="slug", max_length=SLUG_MAX)
    if not isinstance(description, Unchanged):
        values["description"] = rules.text(
            description, field="description", max_length=DESCRIPTION_MAX, required=False
        )
    if not isinstance(is_published, Unchanged):
        values["is_published"] = is_published
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            current = await rules.lock_product(connection, product_id, field="product_id")
            if not isinstance(category_id, Unchanged):
                if category_id is not None:
                    await _category_exists(connection, category_id)
                values["category_id"] = category_id
            if "slug" in values and values["slug"] != current.slug:
                await _refuse_taken_slug(connection, values["slug"])
            values["updated_at"] = utcnow()
            result = await connection.execute(
                update(products)
                .where(products.c.id == product_id)
                .values(**values)
                .returning(*products.c)
            )
            # Name, category and publication decide listings; the slug, product(slug:) lookups.
            work.record(Change("Product", product_id), Change.listing("Product"))
            return result.one()
    except IntegrityError as error:
        raise _translated(error) from None


async def add_product_image(
    db: Database, *, product_id: int, url: str, alt: str = "", position: int | None = None
) -> Row[Any]:
    """Add an image to a product (at the end unless `position` is given); returns the product."""
    url = rules.image_url(url, field="url")
    alt = rules.text(alt, field="alt", max_length=ALT_MAX, required=False)
    if position is not None and position < 0:
        raise DomainError("The position must be 0 or more", field="position")
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            await rules.lock_product(connection, product_id, field="product_id")
            of_product = images.c.product_id == product_id
            count, highest = (
                await connection.execute(
                    select(func.count(), func.max(images.c.position)).where(of_product)
                )
            ).one()
            if count >= MAX_IMAGES:
                raise DomainError(f"A product can have at most {MAX_IMAGES} images", field="images")
            if position is None:
                position = 0 if highest is None else int(highest) + 1
            elif await _image_at(connection, product_id, position):
                raise AlreadyExists("Another image has this position", field="position")
            await connection.execute(
                insert(images).values(product_id=product_id, url=url, alt=alt, position=position)
            )
            work.record(Change("Product", product_id))
            return await _touched(connection, product_id)
    except IntegrityError as error:
        if rules.is_unique_violation(error):
            raise AlreadyExists("Another image has this position", field="position") from None
        raise


async def remove_product_image(db: Database, *, product_id: int, position: int) -> Row[Any]:
    """Remove the image at `position` from a product; returns the product."""
    async with db.unit_of_work() as work:
        connection = work.connection
        await rules.lock_product(connection, product_id, field="product_id")
        result = await connection.execute(
            delete(images).where(images.c.product_id == product_id, images.c.position == position)
        )
        if result.rowcount == 0:
            raise NotFound("The product has no image at this position", field="position")
        work.record(Change("Product", product_id))
        return await _touched(connection, product_id)


async def _touched(connection: AsyncConnection, product_id: int) -> Row[Any]:
    result = await connection.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(updated_at=utcnow())
        .returning(*products.c)
    )
    return result.one()


async def _image_at(connection: AsyncConnection, product_id: int, position: int) -> bool:
    found = await connection.execute(
        select(images.c.id).where(images.c.product_id == product_id, images.c.position == position)
    )
    return found.first() is not None


async def _category_exists(connection: AsyncConnection, category_id: int) -> None:
    found = await connection.execute(select(categories.c.id).where(categories.c.id == category_id))
    if found.first() is None:
        raise NotFound("No such category", field="category_id")


async def _refuse_taken_slug(connection: AsyncConnection, slug: str) -> None:
    found = await connection.execute(select(products.c.id).where(products.c.slug == slug))
    if found.first() is not None:
        raise AlreadyExists("Another product has this slug", field="slug")


def _translated(error: IntegrityError) -> Exception:
    if rules.is_unique_violation(error):
        return AlreadyExists("Another product has this slug", field="slug")
    return error
