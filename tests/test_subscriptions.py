"""Subscriptions over WebSocket (both subprotocols) and SSE: events reach subscribers on
another process, subscribers share work but never results they may not see, and streams
go away cleanly when a process stops (tests/subscription_fleet.py has the processes)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import signed_in_client
from tests.server_processes import server_process_handle
from tests.subscription_clients import (
    LEGACY_WS,
    PROTOCOLS,
    TRANSPORT_WS,
    close_code,
    gql_session,
    raw_socket,
    receive,
    send,
    sse_events,
    start,
)
from tests.subscription_fleet import (
    CANCEL,
    LOW_STOCK,
    ORDER_STATUS,
    PRODUCT,
    RENAME,
    REVIEW,
    REVIEW_ADD,
    WITHIN_SECONDS,
    Fleet,
    pick_variant,
    place_order,
    set_stock,
    stock_of_variant,
    until,
    until_live,
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_order_and_stock_changes_reach_subscribers_on_another_process(
    fleet: Fleet, protocol: str
) -> None:
    shop = fleet.shop
    staff = fleet.caller(shop.staff)
    customer = fleet.caller(shop.customer)
    variant = await pick_variant(fleet, offset=1 if protocol == LEGACY_WS else 0)
    await set_stock(staff, variant, 8)
    order_id = await place_order(fleet, customer, variant)

    # given a customer watching their order and staff watching the product and low stock,
    # connected to the first process
    async with (
        gql_session(fleet.reader, protocol, shop.customer.headers["Authorization"]) as mine,
        gql_session(fleet.reader, protocol, shop.staff.headers["Authorization"]) as backoffice,
    ):
        order_events = start(mine, ORDER_STATUS, {"id": order_id})
        product_events = start(backoffice, PRODUCT, {"id": variant["product"]})
        low_stock = start(backoffice, LOW_STOCK, {"t": 3})
        await until_live(product_events, staff, variant["product"])

        # when the customer cancels through the other process (the unit goes back: 8)
        loop = asyncio.get_running_loop()
        cancelled = await customer.query(CANCEL, {"id": order_id})
        assert cancelled["cancelOrder"]["userErrors"] == []
        changed_at = loop.time()

        # then the order's new status arrives within a second (after PAID, when this
        # process's capture job was quicker than the cancel)
        event = await until(
            order_events, lambda e: e["orderStatusChanged"]["status"] == "CANCELLED"
        )
        assert loop.time() - changed_at < WITHIN_SECONDS
        assert event == {"orderStatusChanged": {"id": order_id, "status": "CANCELLED"}}
        # and so does the product with its stock back
        product = await until(product_events, lambda e: stock_of_variant(e, variant["id"]) == 8)
        assert product["productUpdated"]["id"] == variant["product"]

        # when staff set the stock low through the other process
        await set_stock(staff, variant, 2)
        changed_at = loop.time()

        # then low stock and the product's new stock arrive within a second
        low = await low_stock.next(within=5)
        assert loop.time() - changed_at < WITHIN_SECONDS
        assert low == {"lowStock": {"id": variant["id"], "sku": variant["sku"], "stockQuantity": 2}}
        await until(product_events, lambda e: stock_of_variant(e, variant["id"]) == 2)


async def test_sse_streams_changes_made_on_another_process(fleet: Fleet) -> None:
    shop = fleet.shop
    staff = fleet.caller(shop.staff)
    variant = await pick_variant(fleet, offset=2)
    authorization = shop.staff.headers["Authorization"]
    events = sse_events(fleet.reader, PRODUCT, {"id": variant["product"]}, authorization)
    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def read() -> None:
        async for event in events:
            await received.put(event)

    reader = asyncio.create_task(read())
    try:
        # given a subscriber over SSE that hears changes
        for _ in range(20):
            await staff.query(RENAME, {"id": variant["product"], "name": "SSE probe"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(received.get(), 0.5)
                break
        # when the stock changes through the other process
        await set_stock(staff, variant, 41)
        # then a `next` event carries it
        while True:
            name, data = await asyncio.wait_for(received.get(), 5)
            assert name == "next"
            if stock_of_variant(data["data"], variant["id"]) == 41:
                break
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


async def test_sse_runs_a_query_as_one_event_then_complete(fleet: Fleet) -> None:
    events = [event async for event in sse_events(fleet.reader, "{ __typename }", None, None)]

    assert events[0][0] == "next" and events[0][1]["data"] == {"__typename": "Query"}
    assert events[-1] == ("complete", None)


async def test_a_new_review_reaches_the_products_subscribers(fleet: Fleet) -> None:
    shop = fleet.shop
    author = await signed_in_client(
        shop.http,
        shop.settings,
        role="CUSTOMER",
        email=f"reviewer-{uuid.uuid4().hex[:6]}@x.example",
    )
    variant = await pick_variant(fleet, offset=3)
    async with gql_session(fleet.reader, TRANSPORT_WS, None) as session:
        reviews = start(session, REVIEW, {"id": variant["product"]})
        products = start(session, PRODUCT.replace(" stockQuantity", ""), {"id": variant["product"]})
        await until_live(products, fleet.caller(shop.staff), variant["product"])

        written = await fleet.caller(author).query(
            REVIEW_ADD,
            {
                "input": {
                    "productId": variant["product"],
                    "rating": 4,
                    "title": "Nice",
                    "body": "ok",
                }
            },
        )
        assert written["createReview"]["userErrors"] == []

        event = await reviews.next(within=5)
        assert event["reviewAdded"] == {
            "id": written["createReview"]["review"]["id"],
            "rating": 4,
            "title": "Nice",
        }


async def test_one_redis_subscription_per_process_whatever_the_subscribers(fleet: Fleet) -> None:
    settings = fleet.shop.settings
    if settings.redis_url is None:
        pytest.skip("the embedded mode has no Redis")
    channel = f"{settings.cache_key_prefix}changes"
    variant = await pick_variant(fleet)
    # Three documents, so three running subscriptions (identical ones would share a source).
    documents = [
        PRODUCT.replace(" stockQuantity", ""),
        "subscription ($id: ID!) { productUpdated(productId: $id) { id name } }",
        "subscription ($id: ID!) { productUpdated(productId: $id) { name } }",
    ]
    async with contextlib.AsyncExitStack() as stack:
        for document in documents:
            session = await stack.enter_async_context(gql_session(fleet.reader, TRANSPORT_WS, None))
            subscription = start(session, document, {"id": variant["product"]})
            await until_live(subscription, fleet.caller(fleet.shop.staff), variant["product"])
        redis = Redis.from_url(settings.redis_url)
        try:
            numsub = await redis.pubsub_numsub(channel)
        finally:
            await redis.aclose()

    assert numsub == [(channel.encode(), 1)]


async def test_sigterm_closes_sockets_with_1001(fleet: Fleet) -> None:
    variant = await pick_variant(fleet)
    payload = {
        "query": PRODUCT.replace(" stockQuantity", ""),
        "variables": {"id": variant["product"]},
    }
    with server_process_handle(fleet.shop.settings) as (base, process):
        async with raw_socket(base) as socket:
            await send(socket, {"type": "connection_init"})
            await receive(socket)
            await send(socket, {"type": "subscribe", "id": "1", "payload": payload})
            await asyncio.sleep(0.3)
            # when the process is told to stop
            process.send_signal(signal.SIGTERM)
            # then its clients are told to go elsewhere: 1001, going away
            assert await close_code(socket) == 1001


async def test_subscribers_who_may_see_different_things_do_not_share_results(
    fleet: Fleet,
) -> None:
    shop = fleet.shop
    staff = fleet.caller(shop.staff)
    variant = await pick_variant(fleet, offset=5)
    # The very same document text: the same prepared document, so only who is asking differs.
    watch = {"query": PRODUCT, "variables": {"id": variant["product"]}}
    staff_init = {"Authorization": shop.staff.headers["Authorization"]}
    async with raw_socket(fleet.reader) as anonymous, raw_socket(fleet.reader) as backoffice:
        # given an anonymous caller, then staff, running the same subscription (stock
        # levels are for staff only)
        for socket, init in ((anonymous, {}), (backoffice, staff_init)):
            await send(socket, {"type": "connection_init", "payload": init})
            assert (await receive(socket))["type"] == "connection_ack"
            await send(socket, {"type": "subscribe", "id": "1", "payload": watch})
        for _ in range(20):  # until staff hear changes
            await staff.query(RENAME, {"id": variant["product"], "name": "Probe"})
            with contextlib.suppress(TimeoutError):
                await receive(backoffice, within=0.5)
                break

        # when the stock changes
        await set_stock(staff, variant, 17)

        # then staff see it
        while stock_of_variant((await receive(backoffice))["payload"]["data"], variant["id"]) != 17:
            pass
        # and the anonymous caller never sees a stock level
        seen: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:
                seen.append(await receive(anonymous, within=1.0))
    assert seen, "the anonymous subscriber heard nothing"
    for message in seen:
        payload = message["payload"]
        variants = payload["data"]["productUpdated"]["variants"]
        assert all(entry["stockQuantity"] is None for entry in variants)
        assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_draining_closes_streams_at_once_and_http_is_still_served(fleet: Fleet) -> None:
    variant = await pick_variant(fleet)
    watch = {
        "query": PRODUCT.replace(" stockQuantity", ""),
        "variables": {"id": variant["product"]},
    }
    settings = fleet.shop.settings.model_copy(update={"shutdown_drain_seconds": 3.0})
    with server_process_handle(settings) as (base, process):
        async with raw_socket(base) as socket, httpx.AsyncClient(timeout=10) as http:
            await send(socket, {"type": "connection_init"})
            await receive(socket)
            await send(socket, {"type": "subscribe", "id": "1", "payload": watch})
            events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

            async def read_sse() -> None:
                async for event in sse_events(base, watch["query"], watch["variables"], None):
                    await events.put(event)
                await events.put(("closed", None))

            sse = asyncio.create_task(read_sse())
            await asyncio.sleep(0.5)
            loop = asyncio.get_running_loop()
            # when the process is told to stop (it drains for 3 s first)
            process.send_signal(signal.SIGTERM)
            signalled = loop.time()

            # then the socket is closed with 1001 and the event stream ends without
            # `complete` (the subscription goes on elsewhere), well before the drain ends
            assert await close_code(socket) == 1001
            assert await asyncio.wait_for(events.get(), 5) == ("closed", None)
            assert loop.time() - signalled < 2.0
            # while HTTP requests are still answered
            answered = await http.post(f"{base}/graphql", json={"query": "{ __typename }"})
            assert answered.status_code == 200
            await sse
