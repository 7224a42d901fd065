"""Query limits: depth, aliases, tokens, directives, timeout, introspection and suggestions.

Every limit answers QUERY_TOO_COMPLEX before execution: no data, no SQL (the refusals
are also checked against an app whose database has no tables, where any SQL would fail).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from starlette.applications import Starlette

from app.background import JOB_TASKS
from app.main import create_app
from app.settings import Settings
from tests.conftest import PRODUCTION_DATA_KEYS, Backend, GraphQLClient

GRAPHQL_RESPONSE = "application/graphql-response+json"

# products(1) edges(2) node(3) category(4) parent x5 (5-9) name(10)
DEPTH_10 = """
{ products(first: 1) { edges { node { category {
  parent { parent { parent { parent { parent { name } } } } }
} } } } }
"""
DEPTH_11_VIA_FRAGMENTS = """
query Deep { products(first: 1) { edges { node { category { ...Ancestors } } } } }
fragment Ancestors on Category { parent { parent { parent { ...Top } } } }
fragment Top on Category { parent { parent { parent { name } } } }
"""
DEEP_INTROSPECTION = """
{ __type(name: "Product") { fields { type { fields { type { fields { type { fields {
  type { fields { name } }
} } } } } } } } }
"""
FRAGMENT_CYCLE = """
{ ...A }
fragment A on Query { ...B }
fragment B on Query { ...A }
"""
INTROSPECTION = "{ __schema { queryType { name } } }"
MISSPELLED_FIELD = "{ produts(first: 1) { totalCount } }"
BIG_NESTED_QUERY = """
{
  products(first: 100) {
    edges { node {
      name description variants { sku name price { amount currency } }
      images { url } category { name parent { name } }
    } }
  }
}
"""


def _aliases(count: int) -> str:
    return " ".join(f"a{index}: __typename" for index in range(count))


def _fragment_spread(times: int, aliases: int) -> str:
    """One fragment with `aliases` aliases, spread `times` times."""
    spreads = " ".join("...Many" for _ in range(times))
    return f"{{ {spreads} }}\nfragment Many on Query {{ {_aliases(aliases)} }}"


def _directives(spreads: int, per_fragment: int) -> str:
    fields = " ".join("__typename @include(if: true)" for _ in range(per_fragment))
    return f"{{ {' '.join('...D' for _ in range(spreads))} }}\nfragment D on Query {{ {fields} }}"


async def _client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def tableless(tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    """A caller of an app whose database has no tables: any SQL would fail."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", env="development", debug=True
    )
    async for client in _client_for(create_app(settings)):
        yield GraphQLClient(client, {"accept": GRAPHQL_RESPONSE})


def _production(backend: Backend, **overrides: Any) -> Settings:
    return backend.settings(
        env="production", secret_key="p" * 40, debug=None, **PRODUCTION_DATA_KEYS, **overrides
    )


@pytest.fixture
async def production(backend: Backend) -> AsyncIterator[GraphQLClient]:
    """A caller of the app with production settings."""
    async for client in _client_for(create_app(_production(backend))):
        yield GraphQLClient(client)


async def _refused(client: GraphQLClient, query: str, code: str = "QUERY_TOO_COMPLEX") -> str:
    """Send a document that must be refused before execution; return its error messages."""
    response = await client.post(query)
    body = response.json()
    assert response.status_code == 400, body
    assert "data" not in body, body
    assert body["errors"], body
    assert {error["extensions"]["code"] for error in body["errors"]} == {code}, body
    return " ".join(error["message"] for error in body["errors"])


# --- depth -------------------------------------------------------------------------------


async def test_a_query_at_the_maximum_depth_is_served(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(DEPTH_10)

    assert data["products"]["edges"]


async def test_a_query_one_level_too_deep_through_fragments_is_refused(
    tableless: GraphQLClient,
) -> None:
    message = await _refused(tableless, DEPTH_11_VIA_FRAGMENTS)

    assert "'Deep' is 11 fields deep" in message
    assert "maximum depth is 10" in message


async def test_introspection_fields_count_towards_depth(anonymous: GraphQLClient) -> None:
    message = await _refused(anonymous, DEEP_INTROSPECTION)

    assert "11 fields deep" in message


async def test_the_full_introspection_query_of_graphiql_is_served_in_development(
    anonymous: GraphQLClient,
) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )

    data = await anonymous.query(query)

    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_a_fragment_cycle_is_a_validation_error_not_a_crash(
    anonymous: GraphQLClient,
) -> None:
    message = await _refused(anonymous, FRAGMENT_CYCLE, code="GRAPHQL_VALIDATION_FAILED")

    assert "Cannot spread fragment" in message


# --- aliases -------------------------------------------------------------------------------


async def test_thirty_aliases_are_served(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(f"{{ {_aliases(30)} }}")

    assert len(data) == 30


async def test_an_alias_flood_is_refused(tableless: GraphQLClient) -> None:
    message = await _refused(tableless, f"{{ {_aliases(31)} products(first: 1) {{ totalCount }} }}")

    assert "31 aliases" in message
    assert "maximum is 30" in message


async def test_a_fragment_with_aliases_counts_once_per_spread(anonymous: GraphQLClient) -> None:
    # given a fragment with 20 aliases: spread once it is fine
    await anonymous.query(_fragment_spread(times=1, aliases=20))

    # when it is spread three times
    message = await _refused(anonymous, _fragment_spread(times=3, aliases=20))

    # then its aliases count three times
    assert "60 aliases" in message


# --- tokens and directives ---------------------------------------------------------------------


async def test_a_huge_document_is_refused_by_its_token_count(tableless: GraphQLClient) -> None:
    query = "{ " + "a " * 5001 + "}"  # short tokens: under the byte limit, over the token one

    message = await _refused(tableless, query)

    assert "more than 5000 tokens" in message


async def test_too_many_directives_are_refused(tableless: GraphQLClient) -> None:
    message = await _refused(tableless, _directives(spreads=6, per_fragment=10))

    assert "60 directives" in message
    assert "maximum is 50" in message


async def test_directives_under_the_limit_are_served(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(_directives(spreads=5, per_fragment=10))

    assert data == {"__typename": "Query"}


async def test_a_deeply_nested_document_is_refused_by_the_parser(tableless: GraphQLClient) -> None:
    query = "{" + "a{" * 300 + "b" + "}" * 300 + "}"

    message = await _refused(tableless, query)

    assert "nested too deeply" in message


# --- timeout ---------------------------------------------------------------------------------


@pytest.fixture
async def impatient_app(backend: Backend) -> AsyncIterator[tuple[Starlette, GraphQLClient]]:
    """An app that stops operations after a millisecond."""
    app = create_app(backend.settings(operation_timeout_seconds=0.001, max_query_cost=100_000))
    async for client in _client_for(app):
        yield app, GraphQLClient(client)


def _request_tasks() -> set[asyncio.Task[object]]:
    """The running tasks but the servers' own background ones (the job outbox relay...)."""
    return {task for task in asyncio.all_tasks() if not task.get_name().startswith(JOB_TASKS)}


async def test_an_operation_over_the_timeout_is_stopped_with_a_clear_error(
    impatient_app: tuple[Starlette, GraphQLClient],
) -> None:
    app, client = impatient_app

    # when a big nested query runs longer than the timeout
    response = await client.post(BIG_NESTED_QUERY)

    # then it is stopped with TIMEOUT, no data, no internal error
    body = response.json()
    assert response.status_code == 200, body
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "TIMEOUT"
    assert "0.001 s" in error["message"]
    assert (
        body["extensions"]["cost"]["actualQueryCost"]
        == body["extensions"]["cost"]["requestedQueryCost"]
    )
    # and nothing leaks: the stopped work (its loader batches included) ends, every pooled
    # connection comes back, and the app keeps serving
    engines = (app.state.db.engine, app.state.db.read_engine)
    for _ in range(250):
        if len(_request_tasks()) == 1 and all(e.pool.checkedout() == 0 for e in engines):
            break
        await asyncio.sleep(0.02)
    assert len(_request_tasks()) == 1, _request_tasks()
    assert [engine.pool.checkedout() for engine in engines] == [0, 0]
    assert await client.query("{ __typename }") == {"__typename": "Query"}


# --- introspection and suggestions by environment ----------------------------------------------


async def test_introspection_is_on_in_development(anonymous: GraphQLClient) -> None:
    data = await anonymous.query(INTROSPECTION)

    assert data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_introspection_is_off_in_production(production: GraphQLClient) -> None:
    message = await _refused(production, INTROSPECTION, code="GRAPHQL_VALIDATION_FAILED")

    assert "introspection" in message.lower()
    assert await production.query("{ __typename }") == {"__typename": "Query"}


async def test_introspection_can_be_enabled_in_production(backend: Backend) -> None:
    app = create_app(_production(backend, introspection=True))
    async for client in _client_for(app):
        data = await GraphQLClient(client).query(INTROSPECTION)

        assert data["__schema"]["queryType"]["name"] == "Query"


async def test_suggestions_are_shown_in_development(anonymous: GraphQLClient) -> None:
    message = await _refused(anonymous, MISSPELLED_FIELD, code="GRAPHQL_VALIDATION_FAILED")

    assert "Did you mean" in message


async def test_suggestions_are_hidden_in_production(production: GraphQLClient) -> None:
    message = await _refused(production, MISSPELLED_FIELD, code="GRAPHQL_VALIDATION_FAILED")

    assert "produts" in message
    assert "Did you mean" not in message
    assert "products" not in message
