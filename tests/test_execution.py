"""Query plans and the plain-field shortcut give exactly graphql-core's answers."""

from __future__ import annotations

from typing import Any

import strawberry

from app.context import Context
from app.db import Database
from app.engine.executor import GraphQLExecutor, PlainFieldExecutionContext
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


# How an operation can run: from its compiled plan (the default for queries), on
# graphql-core with the plain-field shortcut (mutations), or on graphql-core alone.
MODES = ("plans", "shortcut", "graphql-core")


def executor_for(schema: strawberry.Schema, mode: str) -> GraphQLExecutor:
    """An executor that runs queries the given way."""
    executor = GraphQLExecutor(schema, cache_size=0, query_plans=mode == "plans")
    if mode == "graphql-core":
        executor._executor_class = type(  # type: ignore[attr-defined]
            "PlainPathOff", (PlainFieldExecutionContext,), {"plain": {}}
        )
    return executor


async def _run(settings: Settings, mode: str) -> dict[str, Any]:
    executor = executor_for(build_schema(), mode)
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


async def test_plans_and_the_shortcut_answer_as_graphql_core_does(settings: Settings) -> None:
    # when
    planned, shortcut, reference = [await _run(settings, mode) for mode in MODES]

    # then: same data, same key order
    assert planned == shortcut == reference
    assert repr(planned) == repr(shortcut) == repr(reference)
    assert len(reference["products"]["edges"]) == 25


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


async def test_errors_and_nulls_are_graphql_cores_in_every_mode() -> None:
    schema = strawberry.Schema(query=BrokenQuery)
    answers = []
    for mode in MODES:
        executor = executor_for(schema, mode)
        result = await executor.execute(
            executor.prepare(BROKEN), context=None, variables=None, operation_name=None
        )
        errors = sorted((error.message, tuple(error.path or ())) for error in result.errors or ())
        answers.append((result.data, errors))

    assert answers[0] == answers[1] == answers[2]
    data, errors = answers[0]
    assert data == {
        "outers": [{"label": "a", "loose": None, "strict": {"value": "ok"}}, None, None]
    }
    assert [path for _, path in errors] == [
        ("outers", 0, "loose", "value"),
        ("outers", 1, "strict", "value"),
        ("outers", 2, "label"),
    ]
