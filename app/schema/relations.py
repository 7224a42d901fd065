"""Relation fields: a related object or list read through a loader, for one parent or many.

A relation is declared once as (loader, key, build). Query plans resolve it for every
parent of a level with one loader call (`BatchResolver`); graphql-core, which runs what
plans do not cover, calls the ordinary per-parent resolver made here from the same
declaration, so both paths give the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import strawberry

from app.engine import BATCH_RESOLVER, BatchResolver
from app.loaders import Loaders


def relation(
    *,
    loader: Callable[[Loaders], Any],
    key: Callable[[Any], Hashable | None],
    build: Callable[[Any], Any],
    description: str,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """A field resolved by `loader(loaders).load(key(parent))`, then `build(loaded)`.

    `key` returning None means there is nothing to load: the value is `build(None)`.
    The field's type is the annotation of the class attribute it is assigned to;
    `metadata` is more field metadata (a scope declaration).
    """
    batch = BatchResolver(
        loader=lambda context: loader(context.loaders),
        key=key,
        build=build,
    )

    async def resolve(root: Any, info: strawberry.Info) -> Any:
        return await batch.resolve_one(root, info.context)

    # No return annotation: the field's type comes from the class attribute.
    del resolve.__annotations__["return"]
    return strawberry.field(
        resolver=resolve,
        description=description,
        metadata={**(metadata or {}), BATCH_RESOLVER: batch},
    )


def optional(build: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`build` for a row that may be missing (None stays None)."""
    return lambda row: None if row is None else build(row)


def each(build: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """`build` for every row of a list."""
    return lambda rows: [build(row) for row in rows]
