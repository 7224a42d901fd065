"""Customer reviews: one per customer and product; the author edits, the author or staff deletes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models.base import utcnow
from app.platform.errors import AlreadyExists, DomainError, NotFound, PermissionDenied
from app.platform.events import Change
from app.services.catalog import rules
from app.services.catalog.rules import UNCHANGED, Unchanged, products, reviews

TITLE_MAX = 200
BODY_MAX = 10_000


async def create_review(
    db: Database,
    *,
    author_id: int,
    product_id: int,
    rating: int,
    title: str,
    body: str,
    include_unpublished: bool = False,
) -> Row[Any]:
    """Add the author's review of a visible product and recompute its rating summary."""
    rating = _rating(rating)
    title = rules.text(title, field="title", max_length=TITLE_MAX)
    body = rules.text(body, field="body", max_length=BODY_MAX, required=False)
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            await rules.lock_product(
                connection,
                product_id,
                field="product_id",
                visible_only=not include_unpublished,
            )
            mine = await connection.execute(
                select(reviews.c.id).where(
                    reviews.c.product_id == product_id, reviews.c.user_id == author_id
                )
            )
            if mine.first() is not None:
                raise _already_reviewed()
            now = utcnow()
            result = await connection.execute(
                insert(reviews)
                .values(
                    product_id=product_id,
                    user_id=author_id,
                    rating=rating,
                    title=title,
                    body=body,
                    created_at=now,
                )
                .returning(*reviews.c)
            )
            row = result.one()
            await rules.refresh_rating(connection, product_id, now)
            work.record(*review_changes(row.id, product_id))
            return row
    except IntegrityError as error:
        if rules.is_unique_violation(error):
            raise _already_reviewed() from None
        raise


async def update_review(
    db: Database,
    *,
    review_id: int,
    author_id: int,
    rating: int | Unchanged = UNCHANGED,
    title: str | Unchanged = UNCHANGED,
    body: str | Unchanged = UNCHANGED,
    include_unpublished: bool = False,
) -> Row[Any]:
    """Change a review; only its author may."""
    values: dict[str, Any] = {}
    if not isinstance(rating, Unchanged):
        values["rating"] = _rating(rating)
    if not isinstance(title, Unchanged):
        values["title"] = rules.text(title, field="title", max_length=TITLE_MAX)
    if not isinstance(body, Unchanged):
        values["body"] = rules.text(body, field="body", max_length=BODY_MAX, required=False)
    async with db.unit_of_work() as work:
        connection = work.connection
        current = await _visible_review(connection, review_id, include_unpublished)
        if current.user_id != author_id:
            raise PermissionDenied("Only the author may change this review", field="review_id")
        if not values:
            return current
        await rules.lock_product(connection, current.product_id, field="review_id")
        result = await connection.execute(
            update(reviews).where(reviews.c.id == review_id).values(**values).returning(*reviews.c)
        )
        row = result.one()
        if "rating" in values:
            await rules.refresh_rating(connection, current.product_id, utcnow())
        work.record(*review_changes(review_id, current.product_id))
        return row


async def delete_review(
    db: Database,
    *,
    review_id: int,
    viewer_id: int,
    moderator: bool = False,
) -> Row[Any]:
    """Delete a review (its author, or staff moderating); returns the deleted row."""
    async with db.unit_of_work() as work:
        connection = work.connection
        current = await _visible_review(connection, review_id, include_unpublished=moderator)
        if current.user_id != viewer_id and not moderator:
            raise PermissionDenied(
                "Only the author or staff may delete this review", field="review_id"
            )
        await rules.lock_product(connection, current.product_id, field="review_id")
        result = await connection.execute(
            delete(reviews).where(reviews.c.id == review_id).returning(*reviews.c)
        )
        row = result.first()
        if row is None:  # deleted by someone else in the meantime
            raise NotFound("No such review", field="review_id")
        await rules.refresh_rating(connection, current.product_id, utcnow())
        work.record(*review_changes(review_id, current.product_id))
        return row


def review_changes(review_id: int, product_id: int) -> tuple[Change, ...]:
    """A review, its product's reviews and rating, and listings sorted by rating changed."""
    return (Change("Review", review_id), Change("Product", product_id), Change.listing("Product"))


async def _visible_review(
    connection: AsyncConnection, review_id: int, include_unpublished: bool
) -> Row[Any]:
    stmt = (
        select(reviews, products.c.is_published)
        .join(products, products.c.id == reviews.c.product_id)
        .where(reviews.c.id == review_id)
    )
    row = (await connection.execute(stmt)).first()
    if row is None or not (row.is_published or include_unpublished):
        raise NotFound("No such review", field="review_id")
    return row


def _rating(rating: int) -> int:
    if not 1 <= rating <= 5:
        raise DomainError("The rating must be from 1 to 5", field="rating")
    return rating


def _already_reviewed() -> AlreadyExists:
    return AlreadyExists("You have already reviewed this product", field="product_id")
