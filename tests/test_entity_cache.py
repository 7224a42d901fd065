"""The entity cache behind the loaders: cached batches run no SQL, and a commit is never hidden."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.caching_docs import LISTING_WITH_VIEWER, PRODUCT, UPDATE_PRODUCT, UPDATE_VARIANT
from tests.conftest import Backend
from tests.private_shop import Shop, private_shop


@pytest.fixture
async def shop(backend: Backend, tmp_path: Path) -> AsyncIterator[Shop]:
    """A private shop served with its caches on."""
    async with private_shop(backend, tmp_path, "entitycache", cache_enabled=True) as made:
        yield made


async def _run(shop: Shop, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await shop.anonymous.post(query, variables)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body  # type: ignore[no-any-return]


async def test_a_loader_batch_whose_keys_are_all_cached_runs_no_sql(shop: Shop) -> None:
    # given a listing read once (a PRIVATE field beside it: the response itself is not cached)
    cold = await _run(shop, LISTING_WITH_VIEWER)
    assert cold["extensions"]["debug"]["sqlStatements"] > 0
    assert cold["extensions"]["debug"]["cache"]["entity"]["misses"] > 0

    # when it is read again
    warm = await _run(shop, LISTING_WITH_VIEWER)

    # then every loader batch was answered by the cache: the same data, no SQL
    debug = warm["extensions"]["debug"]
    assert warm["data"] == cold["data"]
    assert debug["sqlStatements"] == 0
    assert debug["cache"] == {
        "entity": {"hits": debug["cache"]["entity"]["hits"], "misses": 0},
        "response": None,
    }
    assert debug["cache"]["entity"]["hits"] >= 4  # page, variants, images, categories


async def test_after_a_mutation_commits_the_entity_cache_never_returns_the_old_value(
    shop: Shop,
) -> None:
    # given a warm cache
    before = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    node = before[0]["node"]
    variant = node["variants"][0]

    # when staff rename the product and reprice its first variant
    renamed = await shop.staff.query(
        UPDATE_PRODUCT, {"id": node["id"], "input": {"name": "Aaa renamed"}}
    )
    assert renamed["updateProduct"]["userErrors"] == []
    repriced = await shop.staff.query(
        UPDATE_VARIANT, {"id": variant["id"], "input": {"price": "1234.56"}}
    )
    assert repriced["updateVariant"]["userErrors"] == []

    # then the next read shows both changes
    after = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    changed = next(edge["node"] for edge in after if edge["node"]["id"] == node["id"])
    assert changed["name"] == "Aaa renamed"
    assert changed["variants"][0]["price"]["amount"] == "1234.56"
    assert changed["priceRange"]["max"]["amount"] == "1234.56"


async def test_staff_reads_neither_read_nor_poison_the_public_cache(shop: Shop) -> None:
    # given a published product the public has read (and so cached)
    edges = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    product_id = edges[1]["node"]["id"]
    seen = await _run(shop, PRODUCT + " ", {"id": product_id})  # (a space: another document)
    assert seen["data"]["product"]["isPublished"] is True

    # when staff unpublish it and read it themselves (they still see it)
    hidden = await shop.staff.query(
        UPDATE_PRODUCT, {"id": product_id, "input": {"isPublished": False}}
    )
    assert hidden["updateProduct"]["userErrors"] == []
    staff_view = await shop.staff.query(PRODUCT, {"id": product_id})
    assert staff_view["product"]["isPublished"] is False

    # then the public no longer sees it, neither by id nor in the listing
    gone = await _run(shop, PRODUCT + " ", {"id": product_id})
    assert gone["data"]["product"] is None
    listed = (await _run(shop, LISTING_WITH_VIEWER))["data"]["products"]["edges"]
    assert product_id not in [edge["node"]["id"] for edge in listed]
