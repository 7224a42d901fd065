"""Creating and changing categories: unique slugs, an existing parent, no cycles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.platform.errors import AlreadyExists, DomainError, NotFound
from app.platform.events import Change
from app.services.catalog import rules
from app.services.catalog.rules import UNCHANGED, Unchanged, categories
from app.services.seed import slugify

SLUG_MAX = 120
NAME_MAX = 200
DESCRIPTION_MAX = 5000
MAX_DEPTH = 32


async def create_category(
    db: Database,
    *,
    name: str,
    slug: str | None = None,
    description: str | None = None,
    parent_id: int | None = None,
    position: int | None = None,
) -> Row[Any]:
    """Add a category (under `parent_id`, or as a root); the slug defaults to one made from the name."""
    name = rules.text(name, field="name", max_length=NAME_MAX)
    if description is not None:
        description = rules.text(
            description, field="description", max_length=DESCRIPTION_MAX, required=False
        )
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            if parent_id is not None:
                await _existing(connection, parent_id, field="parent_id")
            chosen = await _slug_for(connection, slug, name)
            if position is None:
                position = await _next_position(connection, parent_id)
            result = await connection.execute(
                insert(categories)
                .values(
                    name=name,
                    slug=chosen,
                    description=description or None,
                    parent_id=parent_id,
                    position=position,
                )
                .returning(*categories.c)
            )
            row = result.one()
            work.record(*category_changes(row.id))
            return row
    except IntegrityError as error:
        raise _translated(error) from None


def category_changes(category_id: int) -> tuple[Change, ...]:
    """A category, the tree, and the product listings filtered by its subtree changed."""
    return (Change("Category", category_id), Change.listing("Category"), Change.listing("Product"))


async def update_category(
    db: Database,
    *,
    category_id: int,
    name: str | Unchanged = UNCHANGED,
    slug: str | Unchanged = UNCHANGED,
    description: str | Unchanged | None = UNCHANGED,
    parent_id: int | Unchanged | None = UNCHANGED,
    position: int | Unchanged = UNCHANGED,
) -> Row[Any]:
    """Change a category; moving it under itself or one of its descendants is refused."""
    values: dict[str, Any] = {}
    if not isinstance(name, Unchanged):
        values["name"] = rules.text(name, field="name", max_length=NAME_MAX)
    if not isinstance(slug, Unchanged):
        values["slug"] = rules.slug(slug, field="slug", max_length=SLUG_MAX)
    if not isinstance(description, Unchanged):
        values["description"] = (
            rules.text(
                description,
                field="description",
                max_length=DESCRIPTION_MAX,
                required=False,
            )
            if description is not None
            else None
        ) or None
    if not isinstance(position, Unchanged):
        values["position"] = position
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            current = await _existing(connection, category_id, field="category_id")
            if not isinstance(parent_id, Unchanged):
                if parent_id is not None:
                    await _refuse_cycle(connection, category_id, parent_id)
                values["parent_id"] = parent_id
            if "slug" in values and values["slug"] != current.slug:
                await _refuse_taken_slug(connection, values["slug"])
            if not values:
                return current
            result = await connection.execute(
                update(categories)
                .where(categories.c.id == category_id)
                .values(**values)
                .returning(*categories.c)
            )
            work.record(*category_changes(category_id))
            return result.one()
    except IntegrityError as error:
        raise _translated(error) from None


async def _existing(connection: AsyncConnection, category_id: int, *, field: str) -> Row[Any]:
    row = (
        await connection.execute(select(categories).where(categories.c.id == category_id))
    ).first()
    if row is None:
        raise NotFound("No such category", field=field)
    return row


async def _refuse_cycle(connection: AsyncConnection, category_id: int, parent_id: int) -> None:
    # Walk up from the new parent: meeting the category itself would close a loop.
    field = "parent_id"
    await _existing(connection, parent_id, field=field)
    ancestor: int | None = parent_id
    for _ in range(MAX_DEPTH):
        if ancestor is None:
            return
        if ancestor == category_id:
            raise DomainError(
                "A category cannot be moved under itself or its descendants", field=field
            )
        ancestor = (
            await connection.execute(
                select(categories.c.parent_id).where(categories.c.id == ancestor)
            )
        ).scalar_one_or_none()
    raise DomainError(f"Categories can be nested at most {MAX_DEPTH} levels deep", field=field)


async def _refuse_taken_slug(connection: AsyncConnection, slug: str) -> None:
    taken = (
        await connection.execute(select(categories.c.id).where(categories.c.slug == slug))
    ).first()
    if taken is not None:
        raise AlreadyExists("Another category has this slug", field="slug")


async def _slug_for(connection: AsyncConnection, slug: str | None, name: str) -> str:
    if slug is not None:
        chosen = rules.slug(slug, field="slug", max_length=SLUG_MAX)
        await _refuse_taken_slug(connection, chosen)
        return chosen
    return await rules.free_slug(
        connection, categories.c.slug, slugify(name) or "category", max_length=SLUG_MAX
    )


async def _next_position(connection: AsyncConnection, parent_id: int | None) -> int:
    siblings = (
        categories.c.parent_id.is_(None)
        if parent_id is None
        else categories.c.parent_id == parent_id
    )
    highest = (
        await connection.execute(select(func.max(categories.c.position)).where(siblings))
    ).scalar_one_or_none()
    return 0 if highest is None else int(highest) + 1


def _translated(error: IntegrityError) -> Exception:
    if rules.is_unique_violation(error):
        return AlreadyExists("Another category has this slug", field="slug")
    return error
