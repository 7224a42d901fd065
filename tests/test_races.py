"""Count limits under concurrency (issue 9, item 9): many concurrent inserts for one owner
never leave more rows than the limit, on either backend."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import delete

from app.platform.global_ids import to_global_id
from app.services.accounts.profile import MAX_ADDRESSES
from app.services.catalog.products import MAX_IMAGES
from app.services.catalog.rules import images, products
from app.services.locking import lock_owner
from app.settings import Settings
from tests.conftest import Backend, signed_in_client
from tests.private_shop import private_shop

CONCURRENT = 60
ADD_ADDRESS = """
mutation ($input: AddressInput!) {
  addAddress(input: $input) { address { id } userErrors { field message code } }
}
"""
ADD_IMAGE = """
mutation ($productId: ID!, $input: ProductImageInput!) {
  addProductImage(productId: $productId, input: $input) { product { id } userErrors { message } }
}
"""
HOME = {
    "fullName": "Jane Doe",
    "line1": "Hauptstrasse 1",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


async def test_concurrent_add_address_calls_stop_exactly_at_the_limit(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    caller = await signed_in_client(
        app_client, settings, role="CUSTOMER", email=f"race-{uuid.uuid4().hex[:12]}@test.example"
    )

    answers = await asyncio.gather(
        *(
            caller.query(ADD_ADDRESS, {"input": {**HOME, "line1": f"Street {n}"}})
            for n in range(CONCURRENT)
        )
    )

    added = [a["addAddress"] for a in answers if a["addAddress"]["address"] is not None]
    refused = [a["addAddress"] for a in answers if a["addAddress"]["address"] is None]
    assert len(added) == MAX_ADDRESSES
    assert len(refused) == CONCURRENT - MAX_ADDRESSES
    for payload in refused:
        [error] = payload["userErrors"]
        assert f"at most {MAX_ADDRESSES} addresses" in error["message"], error
    stored = await caller.query("{ me { addresses { id } } }")
    assert len(stored["me"]["addresses"]) == MAX_ADDRESSES


async def test_locking_a_product_does_not_touch_its_updated_at(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with private_shop(backend, tmp_path_factory.mktemp("lock"), "races_lock") as shop:
        product_id = await shop.value("SELECT min(id) FROM products")
        before = await shop.value("SELECT updated_at FROM products WHERE id = :id", id=product_id)

        async with shop.db.engine.begin() as connection:
            await lock_owner(connection, products, product_id)

        after = await shop.value("SELECT updated_at FROM products WHERE id = :id", id=product_id)
        assert after == before


async def test_concurrent_add_product_image_calls_stop_exactly_at_the_limit(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with private_shop(backend, tmp_path_factory.mktemp("images"), "races_images") as shop:
        product_id = await shop.value("SELECT min(id) FROM products")
        async with shop.db.engine.begin() as connection:
            await connection.execute(delete(images).where(images.c.product_id == product_id))
        gid = to_global_id("Product", product_id)

        # Distinct positions: only the count limit can refuse them.
        answers = await asyncio.gather(
            *(
                shop.staff.query(
                    ADD_IMAGE,
                    {
                        "productId": gid,
                        "input": {"url": f"https://img.example/{n}.png", "position": n},
                    },
                )
                for n in range(CONCURRENT)
            )
        )

        refused = [a["addProductImage"] for a in answers if a["addProductImage"]["userErrors"]]
        assert len(refused) == CONCURRENT - MAX_IMAGES
        for payload in refused:
            [error] = payload["userErrors"]
            assert f"at most {MAX_IMAGES} images" in error["message"], error
        stored = await shop.value(
            "SELECT count(*) FROM product_images WHERE product_id = :id", id=product_id
        )
        assert stored == MAX_IMAGES
