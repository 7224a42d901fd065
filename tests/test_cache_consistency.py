"""No read through either cache returns a value older than the last committed write: with two
server processes sharing one Redis, and under concurrent reads and writes (hypothesis)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.caching_docs import LISTING, LISTING_WITH_VIEWER, UPDATE_PRODUCT, UPDATE_VARIANT
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import Shop, private_shop
from tests.server_processes import server_process

PRODUCT_WITH_VARIANTS = """
query ($id: ID!) { product(id: $id) { id name variants { id price { amount } } } }
"""
VERSIONS = itertools.count(1)


def _find(body: dict[str, Any], product_id: str) -> dict[str, Any] | None:
    data = body["data"]
    if "product" in data:
        return data["product"]  # type: ignore[no-any-return]
    for edge in data["products"]["edges"]:
        if edge["node"]["id"] == product_id:
            return edge["node"]  # type: ignore[no-any-return]
    return None


def _versions(node: dict[str, Any], variant_id: str) -> tuple[int, int]:
    """(name version, price version) of what a write set ("AAAA 0007", price 7.00); 0 if seeded."""
    name = node["name"]
    name_version = int(name.split()[1]) if name.startswith("AAAA ") else 0
    price = next(v["price"]["amount"] for v in node["variants"] if v["id"] == variant_id)
    price_version = int(price.split(".")[0]) if price.endswith(".77") else 0
    return name_version, price_version


async def _target(client: GraphQLClient) -> tuple[str, str]:
    first = (await client.query(LISTING))["products"]["edges"][0]["node"]
    return first["id"], first["variants"][0]["id"]


async def test_a_write_through_one_process_is_seen_through_the_other_processes_caches(
    backend: Backend, tmp_path: Any
) -> None:
    if backend.redis_url is None:
        pytest.skip("one process in the embedded mode: two need the shared Redis")
    async with private_shop(backend, tmp_path, "twoprocesses", cache_enabled=True) as shop:
        with (
            server_process(shop.settings) as writer_url,
            server_process(shop.settings) as reader_url,
        ):
            async with (
                httpx.AsyncClient(base_url=writer_url, timeout=30) as to_writer,
                httpx.AsyncClient(base_url=reader_url, timeout=30) as to_reader,
            ):
                staff = GraphQLClient(to_writer, shop.staff.headers)
                reader = GraphQLClient(to_reader)
                # given both caches of the reading process warm
                product_id, variant_id = await _target(reader)
                for query in (LISTING, LISTING, LISTING_WITH_VIEWER, LISTING_WITH_VIEWER):
                    warm = (await reader.post(query)).json()
                hit = (await reader.post(LISTING)).json()["extensions"]["debug"]["cache"]
                assert hit["response"] == "hit"
                assert warm["extensions"]["debug"]["cache"]["entity"]["misses"] == 0

                # when the other process commits a new name and price
                renamed = await staff.query(
                    UPDATE_PRODUCT, {"id": product_id, "input": {"name": "AAAA 0001"}}
                )
                repriced = await staff.query(
                    UPDATE_VARIANT, {"id": variant_id, "input": {"price": "1.77"}}
                )
                assert renamed["updateProduct"]["userErrors"] == []
                assert repriced["updateVariant"]["userErrors"] == []

                # then the reading process shows them through the response and entity caches
                for query in (LISTING, LISTING_WITH_VIEWER):
                    node = _find((await reader.post(query)).json(), product_id)
                    assert node is not None
                    assert _versions(node, variant_id) == (1, 1), query


@pytest.fixture(scope="session")
async def racing_shop(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shop]:
    """A private shop with its caches on, for the concurrent property test."""
    async with private_shop(
        backend, tmp_path_factory.mktemp("racing"), "racing", cache_enabled=True
    ) as shop:
        yield shop


READS = st.sampled_from(["listing", "listing-entity-cache", "product"])


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    writes=st.lists(st.sampled_from(["name", "price"]), min_size=1, max_size=5),
    readers=st.lists(READS, min_size=1, max_size=4),
)
async def test_concurrent_reads_never_see_a_value_older_than_the_last_committed_write(
    racing_shop: Shop, writes: list[str], readers: list[str]
) -> None:
    shop = racing_shop
    product_id, variant_id = await _target(shop.anonymous)
    committed = {"name": 0, "price": 0}
    done = asyncio.Event()
    documents = {
        "listing": (LISTING, None),
        "listing-entity-cache": (LISTING_WITH_VIEWER, None),
        "product": (PRODUCT_WITH_VARIANTS, {"id": product_id}),
    }

    async def write() -> None:
        for field in writes:
            version = next(VERSIONS)
            if field == "name":
                body = await shop.staff.query(
                    UPDATE_PRODUCT, {"id": product_id, "input": {"name": f"AAAA {version:04d}"}}
                )
                assert body["updateProduct"]["userErrors"] == []
            else:
                body = await shop.staff.query(
                    UPDATE_VARIANT, {"id": variant_id, "input": {"price": f"{version}.77"}}
                )
                assert body["updateVariant"]["userErrors"] == []
            committed[field] = version  # the mutation has answered: its commit is visible
            await asyncio.sleep(0)
        done.set()

    async def read(kind: str) -> None:
        query, variables = documents[kind]
        while True:
            floor = dict(committed)  # every write that answered before this read started
            finished = done.is_set()
            body = (await shop.anonymous.post(query, variables)).json()
            node = _find(body, product_id)
            assert node is not None, body
            name_version, price_version = _versions(node, variant_id)
            assert name_version >= floor["name"] or floor["name"] == 0, (kind, node, floor)
            assert price_version >= floor["price"] or floor["price"] == 0, (kind, node, floor)
            if finished:
                return
            # An in-memory cache hit never suspends: let the writer run between reads.
            await asyncio.sleep(0.001)

    await asyncio.wait_for(asyncio.gather(write(), *(read(kind) for kind in readers)), timeout=120)
