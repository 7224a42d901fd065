"""The response cache: hot public queries run no SQL, commits drop what they touch, HTTP caching."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.caching_docs import LISTING, LISTING_WITH_VIEWER, UPDATE_PRODUCT
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import Shop, private_shop

CREATE_PRODUCT = """
mutation ($input: ProductCreateInput!) {
  createProduct(input: $input) { product { id } userErrors { code message } }
}
"""


@pytest.fixture
async def shop(backend: Backend, tmp_path: Path) -> AsyncIterator[Shop]:
    """A private shop served with its caches on."""
    async with private_shop(backend, tmp_path, "responsecache", cache_enabled=True) as made:
        yield made


async def _run(client: GraphQLClient, query: str) -> dict[str, Any]:
    response = await client.post(query)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body  # type: ignore[no-any-return]


def _names(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in body["data"]["products"]["edges"]]


async def test_a_hot_public_query_is_served_from_the_response_cache_with_no_sql(
    shop: Shop,
) -> None:
    # given the storefront listing answered once
    cold = await _run(shop.anonymous, LISTING)
    assert cold["extensions"]["debug"]["cache"]["response"] == "miss"
    assert cold["extensions"]["debug"]["sqlStatements"] > 0

    # when it is asked again
    hot = await _run(shop.anonymous, LISTING)

    # then the stored response answers: same data and cost, no SQL, no loader ran
    debug = hot["extensions"]["debug"]
    assert hot["data"] == cold["data"]
    assert debug["sqlStatements"] == 0
    assert debug["cache"] == {"entity": {"hits": 0, "misses": 0}, "response": "hit"}
    cost, cold_cost = hot["extensions"]["cost"], cold["extensions"]["cost"]
    assert cost["requestedQueryCost"] == cold_cost["requestedQueryCost"]
    assert cost["actualQueryCost"] == cold_cost["actualQueryCost"] > 0


async def test_a_commit_drops_the_responses_it_touches_listing_membership_included(
    shop: Shop,
) -> None:
    # given the listing cached
    before = _names(await _run(shop.anonymous, LISTING))
    await _run(shop.anonymous, LISTING)
    edges = (await _run(shop.anonymous, LISTING))["data"]["products"]["edges"]
    first_id = edges[0]["node"]["id"]

    # when a product of it is renamed, then a new product is published at the top
    renamed = await shop.staff.query(
        UPDATE_PRODUCT, {"id": first_id, "input": {"name": "Zzz renamed"}}
    )
    assert renamed["updateProduct"]["userErrors"] == []
    after_rename = _names(await _run(shop.anonymous, LISTING))
    created = await shop.staff.query(
        CREATE_PRODUCT, {"input": {"name": "Aaaa new", "isPublished": True}}
    )
    assert created["createProduct"]["userErrors"] == []
    after_create = await _run(shop.anonymous, LISTING)

    # then each read after a commit shows it
    assert before[0] not in after_rename
    assert after_create["extensions"]["debug"]["cache"]["response"] == "miss"
    assert _names(after_create)[0] == "Aaaa new"

    # and unpublishing takes it out of the listing again
    new_id = created["createProduct"]["product"]["id"]
    hidden = await shop.staff.query(UPDATE_PRODUCT, {"id": new_id, "input": {"isPublished": False}})
    assert hidden["updateProduct"]["userErrors"] == []
    assert "Aaaa new" not in _names(await _run(shop.anonymous, LISTING))


async def test_staff_and_private_queries_are_never_served_from_the_response_cache(
    shop: Shop,
) -> None:
    # given the listing cached for the public
    await _run(shop.anonymous, LISTING)
    await _run(shop.anonymous, LISTING)

    # when staff (who also see unpublished products) ask, and anyone asks with a PRIVATE field
    staff = await _run(shop.staff, LISTING)
    private = [await _run(shop.anonymous, LISTING_WITH_VIEWER) for _ in range(2)]

    # then neither is answered from (or stored in) the response cache
    assert staff["extensions"]["debug"]["cache"]["response"] is None
    assert [body["extensions"]["debug"]["cache"]["response"] for body in private] == [None, None]


async def test_get_responses_carry_cache_control_and_an_etag_that_gives_304(shop: Shop) -> None:
    # given a public query over GET
    params = {"query": LISTING}
    headers = {"Accept": "application/graphql-response+json"}
    first = await shop.http.get("/graphql", params=params, headers=headers)
    assert first.status_code == 200, first.text

    # when it is asked again with the ETag it was given
    etag = first.headers["etag"]
    again = await shop.http.get(
        "/graphql", params=params, headers={**headers, "If-None-Match": etag}
    )
    other = await shop.http.get(
        "/graphql", params=params, headers={**headers, "If-None-Match": 'W/"other"'}
    )

    # then: cacheable for the smallest maxAge of its types (Product: 60 s), 304 with no body
    assert first.headers["cache-control"] == "public, max-age=60"
    assert etag.startswith('W/"')
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert other.status_code == 200 and other.headers["etag"] == etag
    # and a query with a PRIVATE field, or a mutation's POST, is not for caches
    private = await shop.http.get(
        "/graphql", params={"query": LISTING_WITH_VIEWER}, headers=headers
    )
    assert private.headers["cache-control"] == "no-store"
    posted = await shop.http.post("/graphql", json=params, headers=headers)
    assert "cache-control" not in posted.headers


async def test_hits_and_misses_are_logged_in_one_debug_line_per_request(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    # given DEBUG logging of the cache
    caplog.set_level(logging.DEBUG, logger="shopgraph.cache")

    # when the listing is asked twice
    await _run(shop.anonymous, LISTING)
    await _run(shop.anonymous, LISTING)

    # then each request logged one line with its counts per layer
    lines = [record.msg for record in caplog.records if record.name == "shopgraph.cache"]
    events = [line for line in lines if isinstance(line, dict) and line.get("event") == "cache"]
    assert [event["response"] for event in events] == ["miss", "hit"], lines
    assert events[0]["entity_misses"] > 0 and events[1]["entity_hits"] == 0
