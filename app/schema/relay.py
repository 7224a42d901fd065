"""Relay building blocks: the Node interface, PageInfo and the connection arguments."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

import strawberry
from strawberry.types.base import get_object_definition

from app.loaders.paging import Page
from app.platform.global_ids import to_global_id
from app.platform.pagination import CursorSort, PageRequest, page_request
from app.schema.cache_hints import PART_OF_PARENT
from app.settings import Settings


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    """Anything that `node(id)` can fetch: its global ID is its type name and primary key."""

    pk: strawberry.Private[int]

    @strawberry.field(description="The opaque global ID of this object.")
    def id(self) -> strawberry.ID:
        # Made on request: most responses never ask for the IDs of the rows they show.
        return strawberry.ID(to_global_id(get_object_definition(self, strict=True).name, self.pk))


@strawberry.type(
    description="Where a page of a connection sits in the whole list.", directives=[PART_OF_PARENT]
)
class PageInfo:
    """Relay page information."""

    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Whether items precede this page (when paging forward: whether `after` was given)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first item of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item of the page.")

    @classmethod
    def of(cls, page: Page[Any], cursors: list[str]) -> PageInfo:
        """Where `page` sits, given the cursors of its first and last edges."""
        return cls(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


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


class Paging(NamedTuple):
    """The connection arguments a field was given."""

    first: int | None
    after: str | None
    last: int | None
    before: str | None

    def request(self, sort: CursorSort, settings: Settings) -> PageRequest:
        """The checked page request, capped at the configured page size."""
        return page_request(
            first=self.first,
            after=self.after,
            last=self.last,
            before=self.before,
            sort=sort,
            default_size=settings.default_page_size,
            max_size=settings.max_page_size,
        )
