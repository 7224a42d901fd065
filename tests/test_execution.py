"""The executor's shortcut for plain fields gives exactly graphql-core's answers."""

from __future__ import annotations

from typing import Any

import strawberry

from app.context import Context
from app.db import Database
from app.platform.graphql_execution import GraphQLExecutor, PlainFieldExecutionContext
from app.platform.ratelimit import MemoryRateLimiter
from app.schema import build_schema
from app.settings import Settings

LISTING = """
query Listing($first: Int!) {
  products(first: $first, sortBy: {field: PRICE, direction: DESC}) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor
      node {
        __typename id name slug description isPublished createdAt updatedAt
        priceRange { min { amount currency } max { amount currency } }
        cheapest: priceRange { min { amount } }
        ratingSummary { average count }
        category { id name parent { name } children { name } }
        variants { id sku name inStock attributes price { amount currency } }
        images { url alt position }
        reviews(first: 2) { totalCount edges { node { rating title createdAt author { displayName } } } }
      }
    }
  }
}
"""


async def _run(settings: Settings, *, shortcut: bool) -> dict[str, Any]:
    executor = GraphQLExecutor(build_schema(), cache_size=0)
    if not shortcut:  # graphql-core's own path for every field
        executor._executor_class = type(  # type: ignore[attr-defined]
            "PlainPathOff", (PlainFieldExecutionContext,), {"plain": {}}
        )
    db = Database.from_settings(settings)
    try:
        context = Context(
            db=db, settings=settings, request_id="t", rate_limiter=MemoryRateLimiter()
        )
        result = await executor.execute(
            executor.prepare(LISTING), context=context, variables={"first": 25}, operation_name=None
        )
    finally:
        await db.dispose()
    assert not result.errors, result.errors
    assert result.data is not None
    return result.data


async def test_the_shortcut_answers_as_graphql_core_does(settings: Settings) -> None:
    # when
    fast = await _run(settings, shortcut=True)
    reference = await _run(settings, shortcut=False)

    # then: same data, same key order
    assert fast == reference
    assert repr(fast) == repr(reference)
    assert len(fast["products"]["edges"]) == 25


@strawberry.type
class Inner:
    value: str


@strawberry.type
class Outer:
    loose: Inner | None
    strict: Inner
    label: str


@strawberry.type
class BrokenQuery:
    @strawberry.field
    def outers(self) -> list[Outer | None]:
        broken = Inner(value=None)  # type: ignore[arg-type]  # a bug a resolver could have
        fine = Inner(value="ok")
        return [
            Outer(loose=broken, strict=fine, label="a"),
            Outer(loose=fine, strict=broken, label="b"),
            Outer(loose=None, strict=fine, label=None),  # type: ignore[arg-type]
        ]


BROKEN = "{ outers { label loose { value } strict { value } } }"


async def test_errors_and_nulls_are_graphql_cores_with_the_shortcut() -> None:
    schema = strawberry.Schema(query=BrokenQuery)
    answers = []
    for shortcut in (True, False):
        executor = GraphQLExecutor(schema, cache_size=0)
        if not shortcut:
            executor._executor_class = type(  # type: ignore[attr-defined]
                "PlainPathOff", (PlainFieldExecutionContext,), {"plain": {}}
            )
        result = await executor.execute(
            executor.prepare(BROKEN), context=None, variables=None, operation_name=None
        )
        errors = sorted((error.message, tuple(error.path or ())) for error in result.errors or ())
        answers.append((result.data, errors))

    assert answers[0] == answers[1]
    data, errors = answers[0]
    assert data == {
        "outers": [{"label": "a", "loose": None, "strict": {"value": "ok"}}, None, None]
    }
    assert [path for _, path in errors] == [
        ("outers", 0, "loose", "value"),
        ("outers", 1, "strict", "value"),
        ("outers", 2, "label"),
    ]
