"""Query plans give exactly graphql-core's answers."""

from __future__ import annotations

import ast
from typing import Any

import strawberry

from app.context import Context
from app.db import Database
from app.engine import GraphQLExecutor
from app.platform.crypto import DataCipher
from app.platform.ratelimit import MemoryRateLimiter
from app.schema import build_schema
from app.services.payments.gateway import SandboxGateway
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


# How an operation can run: from its compiled plan (the default for queries), or on
# graphql-core (mutations, and what plans do not cover).
MODES = ("plans", "graphql-core")
_EXECUTORS: dict[tuple[int, str], GraphQLExecutor] = {}


def executor_for(schema: strawberry.Schema, mode: str) -> GraphQLExecutor:
    """The executor that runs queries the given way, one per schema and mode.

    Executors are shared and keep their document cache on, as the served app does, so
    plans compiled for one document and one set of directive variables are reused by
    every later run of that document.
    """
    key = (id(schema), mode)
    if key not in _EXECUTORS:
        _EXECUTORS[key] = GraphQLExecutor(schema, cache_size=256, query_plans=mode == "plans")
    return _EXECUTORS[key]


def assert_plans_answer_as_graphql_core(
    planned: tuple[Any, list[tuple[str, Any, str]]],
    reference: tuple[Any, list[tuple[str, Any, str]]],
) -> None:
    """Plans give graphql-core's data, and its errors plus those graphql-core drops.

    Answers are (data, sorted [(message, path, locations)]). graphql-core stops reporting
    errors below a position once that position is nulled; plans report every error of a
    field that ran, once. So every graphql-core error is a plan error, and a plan error
    graphql-core lacks lies below a position that the (equal) data shows as null.
    """
    data, errors = planned
    assert data == reference[0]
    assert repr(data) == repr(reference[0])  # same key order
    assert len(errors) == len(set(errors)), errors  # each error once
    missing = [error for error in reference[1] if error not in errors]
    assert not missing, missing
    for error in errors:
        if error not in reference[1]:
            assert _under_a_null(data, error[1]), error


def _under_a_null(data: Any, path: Any) -> bool:
    """Whether some position above `path` (a list, or its repr) is null in `data`."""
    steps = ast.literal_eval(path) if isinstance(path, str) else path  # a repr of a list
    value = data
    for step in steps[:-1]:
        if value is None:
            return True
        value = value[step]
    return value is None


async def _run(settings: Settings, mode: str) -> dict[str, Any]:
    executor = executor_for(build_schema(), mode)
    db = Database.from_settings(settings)
    try:
        context = Context(
            db=db,
            settings=settings,
            request_id="t",
            rate_limiter=MemoryRateLimiter(),
            gateway=SandboxGateway(),
            cipher=DataCipher.from_settings(settings),
        )
        result = await executor.execute(
            executor.prepare(LISTING), context=context, variables={"first": 25}, operation_name=None
        )
    finally:
        await db.dispose()
    assert not result.errors, result.errors
    assert result.data is not None
    return result.data


async def test_plans_answer_as_graphql_core_does(settings: Settings) -> None:
    # when
    planned, reference = [await _run(settings, mode) for mode in MODES]

    # then: same data, same key order
    assert planned == reference
    assert repr(planned) == repr(reference)
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

    assert_plans_answer_as_graphql_core(answers[0], answers[1])
    data, errors = answers[0]
    assert data == {
        "outers": [{"label": "a", "loose": None, "strict": {"value": "ok"}}, None, None]
    }
    assert [path for _, path in errors] == [
        ("outers", 0, "loose", "value"),
        ("outers", 1, "strict", "value"),
        ("outers", 2, "label"),
    ]
