"""Relay building blocks: the Node interface and PageInfo."""

from __future__ import annotations

from typing import Annotated

import strawberry


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    """Anything that `node(id)` can fetch."""

    id: strawberry.ID = strawberry.field(description="The opaque global ID of this object.")


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    """Relay page information."""

    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Whether items precede this page (when paging forward: whether `after` was given)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first item of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item of the page.")


First = Annotated[
    int | None,
    strawberry.argument(
        description="Return the first N items (default 20, at most 100 unless the server says otherwise)."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(description="Return items after this cursor (from a previous page)."),
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description="Return the last N items (at most 100 unless the server says otherwise)."
    ),
]
Before = Annotated[
    str | None,
    strawberry.argument(description="Return items before this cursor (from a previous page)."),
]
