"""The engine over HTTP: documents that once crashed it, errors independent of field order."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.compat import IncompatibleDependency, check_installed, declared_ranges
from tests.conftest import GraphQLClient

SKIP_WITH_DEFAULT = "query ($b: Boolean = false) { __typename @skip(if: $b) }"
NESTED_SKIP = (
    "query ($b: Boolean = false) { products(first: 2) { edges { node { id @skip(if: $b) } } } }"
)
# Two root fields share the count's loader future; a non-null error below the second
# makes graphql-core (which runs it: introspection is mixed in) cancel its siblings.
SHARED_LOAD = """
{
  a: products { totalCount }
  b: products { totalCount edges { node { reviews(first: 101) { totalCount } } } }
  __type(name: "Product") { name }
}
"""
BAD_PAGE_FIRST = "{ products(first: -1) { totalCount } category { name } }"
BAD_PAGE_LAST = "{ category { name } products(first: -1) { totalCount } }"


async def _answer(client: GraphQLClient, query: str, variables: Any = None) -> dict[str, Any]:
    payload = {"query": query, "variables": variables}
    response = await client.http.post(
        "/graphql", json=payload, headers={**client.headers, "Accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("value", [None, True, False])
async def test_a_directive_variable_sent_as_null_is_a_request_error(
    anonymous: GraphQLClient, value: bool | None
) -> None:
    # when: the variable has a default, and the client sends an explicit value
    body = await _answer(anonymous, SKIP_WITH_DEFAULT, {"b": value})

    # then: null is invalid for `if: Boolean!` (as graphql-core says), never a crash
    if value is None:
        assert "data" not in body  # a request error: nothing executed
        [error] = body["errors"]
        assert "Argument 'if' has invalid value" in error["message"]
        assert error["locations"] == [{"line": 1, "column": 52}]
    else:
        assert body["data"] == ({} if value else {"__typename": "Query"})


async def test_a_nested_directive_variable_sent_as_null_fails_its_field(
    anonymous: GraphQLClient,
) -> None:
    body = await _answer(anonymous, NESTED_SKIP, {"b": None})

    # then: the error sits where the selection is collected; non-null nodes null the root
    assert body["data"] is None
    paths = [error["path"] for error in body["errors"]]
    assert paths == [["products", "edges", 0, "node"], ["products", "edges", 1, "node"]]
    assert {error["extensions"]["code"] for error in body["errors"]} == {"BAD_USER_INPUT"}


async def test_fields_sharing_a_load_are_not_cancelled_with_a_failing_sibling(
    anonymous: GraphQLClient,
) -> None:
    body = await _answer(anonymous, SHARED_LOAD)

    assert body["data"] is None
    assert body["errors"], body
    assert all(error["extensions"]["code"] == "BAD_USER_INPUT" for error in body["errors"])
    assert "at most 100" in body["errors"][0]["message"]


async def test_errors_do_not_depend_on_the_order_of_fields(anonymous: GraphQLClient) -> None:
    first = await _answer(anonymous, BAD_PAGE_FIRST)
    last = await _answer(anonymous, BAD_PAGE_LAST)

    def error_set(body: dict[str, Any]) -> set[tuple[str, str]]:
        return {(error["message"], repr(error["path"])) for error in body["errors"]}

    assert first["data"] is None and last["data"] is None
    assert error_set(first) == error_set(last)
    assert len(error_set(first)) == len(first["errors"]) == 2  # both fields ran, each once


def test_an_installed_version_outside_the_pinned_range_is_refused() -> None:
    # the checkout is installed (make install): its declared ranges are readable
    assert "strawberry-graphql" in declared_ranges()
    # given the real check with a range the installed version cannot meet
    with pytest.raises(IncompatibleDependency) as refused:
        check_installed(["graphql-core"], ranges={"graphql-core": "graphql-core<0.1"})
    # then the message says what is installed and what to install
    message = str(refused.value)
    assert "graphql-core" in message and "is installed" in message
    assert "pip install 'graphql-core<0.1'" in message
    # and the pinned ranges themselves hold
    check_installed(["graphql-core", "strawberry-graphql", "sqlalchemy"])
