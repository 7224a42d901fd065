"""The change hub: one bus subscription per process, fanned out to the listeners that want it."""

from __future__ import annotations

import asyncio

import pytest

from app.platform.change_hub import ChangeHub
from app.platform.events import Change, InProcessChangeBus, RedisChangeBus
from app.platform.ratelimit import redis_client
from tests.redis_server import RedisServer, needs_redis_server


async def test_a_listener_hears_only_the_batches_touching_its_tags_or_entities() -> None:
    bus = InProcessChangeBus()
    hub = ChangeHub(bus)
    async with (
        hub.listen(tags=["Order:1"]) as order_one,
        hub.listen(entities=["ProductVariant"]) as variants,
    ):
        await bus.publish([Change("Order", 2)])
        await bus.publish([Change("Order", 1), Change("Cart", 3)])
        await bus.publish([Change("ProductVariant", 9)])
        await asyncio.sleep(0.05)

        assert [list(batch) for batch in _drain(order_one)] == [
            [Change("Order", 1), Change("Cart", 3)]
        ]
        assert [list(batch) for batch in _drain(variants)] == [[Change("ProductVariant", 9)]]
    # the last listener gone, the hub holds no subscription
    assert hub.listener_count == 0
    await asyncio.sleep(0.05)
    assert hub._pump is None


@needs_redis_server
async def test_after_redis_restarts_the_hub_subscribes_again(redis_server: RedisServer) -> None:
    redis = redis_client(redis_server.url)
    bus = RedisChangeBus(redis, channel="hub-test:changes")
    hub = ChangeHub(bus, retry_seconds=0.05, max_retry_seconds=0.2)
    try:
        async with hub.listen(tags=["Product:7"]) as product:
            await bus.publish([Change("Product", 7)])
            assert list(await asyncio.wait_for(product.get(), 5)) == [Change("Product", 7)]

            # when Redis goes away and comes back on the same port
            redis_server.kill()
            await asyncio.sleep(0.3)
            redis_server.start()

            # then changes published from then on reach the listener again
            async def heard() -> bool:
                await bus.publish([Change("Product", 7)])
                try:
                    await asyncio.wait_for(product.get(), 0.3)
                except TimeoutError:
                    return False
                return True

            for _ in range(50):
                if await heard():
                    break
            else:
                pytest.fail("the hub never subscribed again")
    finally:
        await redis.aclose()


def _drain(queue: asyncio.Queue[object]) -> list[object]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
