"""Subscriptions over WebSocket (both subprotocols) and SSE, against live server processes.

With PostgreSQL and Redis there are two `shopgraph serve` processes: subscribers are on
the first, every change is made through the second, so events cross processes through
Redis pub/sub. In the embedded mode (SQLite, in-process bus) there is one process, which
both serves the subscribers and takes the changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError
from redis.asyncio import Redis

from app.main import create_app
from app.platform.global_ids import to_global_id
from app.platform.tokens import TokenService
from tests.checkout_shop import checkout, fill_cart
from tests.conftest import Backend, GraphQLClient, signed_in_client
from tests.live_server import live_server
from tests.private_shop import Shop, private_shop
from tests.server_processes import server_process, server_process_handle
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

ORDER_STATUS = "subscription ($id: ID!) { orderStatusChanged(orderId: $id) { id status } }"
PRODUCT = """subscription ($id: ID!) {
  productUpdated(productId: $id) { id name variants { id stockQuantity } }
}"""
LOW_STOCK = "subscription ($t: Int!) { lowStock(threshold: $t) { id sku stockQuantity } }"
REVIEW = "subscription ($id: ID!) { reviewAdded(productId: $id) { id rating title } }"
RENAME = """mutation ($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { userErrors { message } }
}"""
SET_STOCK = """mutation ($id: ID!, $quantity: Int!) {
  setStock(variantId: $id, quantity: $quantity) { userErrors { message } }
}"""
CANCEL = (
    "mutation ($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
)
REVIEW_ADD = """mutation ($input: ReviewInput!) {
  createReview(input: $input) { review { id } userErrors { message } }
}"""
# Events must reach a subscriber on another process within this (the issue: a second).
WITHIN_SECONDS = 1.0


@dataclass
class Fleet:
    """The private shop, its server processes, and callers talking to the writing one."""

    shop: Shop
    bases: list[str]
    clients: list[httpx.AsyncClient]

    @property
    def reader(self) -> str:
        """Where subscribers connect."""
        return self.bases[0]

    @property
    def writer(self) -> str:
        """Where changes are made (another process when there are two)."""
        return self.bases[-1]

    def caller(self, client: GraphQLClient, base: str | None = None) -> GraphQLClient:
        """The same caller (same token), talking to a server process over HTTP."""
        http = httpx.AsyncClient(base_url=base or self.writer, timeout=30)
        self.clients.append(http)
        return GraphQLClient(http, dict(client.headers))


@pytest.fixture(scope="module")
async def fleet(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    async with private_shop(
        backend,
        tmp_path_factory.mktemp("subscriptions"),
        "subscriptions",
        cache_enabled=True,
        ws_init_timeout_seconds=1.0,
        ws_max_operations=3,
        ws_max_connections_per_viewer=4,
    ) as shop:
        count = 2 if backend.redis_url else 1
        with contextlib.ExitStack() as stack:
            bases = [stack.enter_context(server_process(shop.settings)) for _ in range(count)]
            fleet = Fleet(shop, bases, [])
            try:
                yield fleet
            finally:
                for http in fleet.clients:
                    await http.aclose()


async def _variant(fleet: Fleet, offset: int = 0) -> dict[str, Any]:
    rows = await fleet.shop.rows(
        "SELECT v.id, v.sku, v.product_id FROM product_variants v JOIN products p"
        " ON p.id = v.product_id WHERE p.is_published ORDER BY v.id"
    )
    row = rows[offset]
    return {
        "id": to_global_id("ProductVariant", row.id),
        "sku": row.sku,
        "product": to_global_id("Product", row.product_id),
    }


async def _set_stock(staff: GraphQLClient, variant: dict[str, Any], quantity: int) -> None:
    data = await staff.query(SET_STOCK, {"id": variant["id"], "quantity": quantity})
    assert data["setStock"]["userErrors"] == []


async def _live(subscription: Any, staff: GraphQLClient, product: str) -> None:
    """Wait until a productUpdated subscription hears changes (renames until one arrives)."""
    for _ in range(20):
        await staff.query(RENAME, {"id": product, "name": f"Probe {uuid.uuid4().hex[:6]}"})
        with contextlib.suppress(TimeoutError):
            await subscription.next(within=0.5)
            return
    raise AssertionError("the subscription never heard a change")


def _stock(event: dict[str, Any], variant_id: str) -> int | None:
    for variant in event["productUpdated"]["variants"]:
        if variant["id"] == variant_id:
            return int(variant["stockQuantity"])
    return None


async def _until(subscription: Any, wanted: Any, within: float = 5.0) -> dict[str, Any]:
    """The first result `wanted(result)` accepts (earlier ones were other changes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await subscription.next(within=max(0.01, deadline - loop.time()))
        if wanted(result):
            return result  # type: ignore[no-any-return]


async def _order(fleet: Fleet, customer: GraphQLClient, variant: dict[str, Any]) -> str:
    token = await fill_cart(customer, variant["id"], 1)
    placed = await checkout(customer, cart_token=token)
    assert placed["userErrors"] == [], placed
    return str(placed["order"]["id"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_order_and_stock_changes_reach_subscribers_on_another_process(
    fleet: Fleet, protocol: str
) -> None:
    shop = fleet.shop
    staff = fleet.caller(shop.staff)
    customer = fleet.caller(shop.customer)
    variant = await _variant(fleet, offset=1 if protocol == LEGACY_WS else 0)
    await _set_stock(staff, variant, 8)
    order_id = await _order(fleet, customer, variant)

    # given a customer watching their order and staff watching the product and low stock,
    # connected to the first process
    async with (
        gql_session(fleet.reader, protocol, shop.customer.headers["Authorization"]) as mine,
        gql_session(fleet.reader, protocol, shop.staff.headers["Authorization"]) as backoffice,
    ):
        order_events = start(mine, ORDER_STATUS, {"id": order_id})
        product_events = start(backoffice, PRODUCT, {"id": variant["product"]})
        low_stock = start(backoffice, LOW_STOCK, {"t": 3})
        await _live(product_events, staff, variant["product"])

        # when the customer cancels through the other process (the unit goes back: 8)
        loop = asyncio.get_running_loop()
        cancelled = await customer.query(CANCEL, {"id": order_id})
        assert cancelled["cancelOrder"]["userErrors"] == []
        changed_at = loop.time()

        # then the order's new status arrives within a second
        event = await order_events.next(within=5)
        assert loop.time() - changed_at < WITHIN_SECONDS
        assert event == {"orderStatusChanged": {"id": order_id, "status": "CANCELLED"}}
        # and so does the product with its stock back
        product = await _until(product_events, lambda e: _stock(e, variant["id"]) == 8)
        assert product["productUpdated"]["id"] == variant["product"]

        # when staff set the stock low through the other process
        await _set_stock(staff, variant, 2)
        changed_at = loop.time()

        # then low stock and the product's new stock arrive within a second
        low = await low_stock.next(within=5)
        assert loop.time() - changed_at < WITHIN_SECONDS
        assert low == {"lowStock": {"id": variant["id"], "sku": variant["sku"], "stockQuantity": 2}}
        await _until(product_events, lambda e: _stock(e, variant["id"]) == 2)


async def test_sse_streams_changes_made_on_another_process(fleet: Fleet) -> None:
    shop = fleet.shop
    staff = fleet.caller(shop.staff)
    variant = await _variant(fleet, offset=2)
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
        await _set_stock(staff, variant, 41)
        # then a `next` event carries it
        while True:
            name, data = await asyncio.wait_for(received.get(), 5)
            assert name == "next"
            if _stock(data["data"], variant["id"]) == 41:
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
    variant = await _variant(fleet, offset=3)
    async with gql_session(fleet.reader, TRANSPORT_WS, None) as session:
        reviews = start(session, REVIEW, {"id": variant["product"]})
        products = start(session, PRODUCT.replace(" stockQuantity", ""), {"id": variant["product"]})
        await _live(products, fleet.caller(shop.staff), variant["product"])

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


# --- refusals ---------------------------------------------------------------------------


async def test_someone_elses_order_is_refused(fleet: Fleet) -> None:
    shop = fleet.shop
    variant = await _variant(fleet, offset=4)
    await _set_stock(fleet.caller(shop.staff), variant, 5)
    order_id = await _order(fleet, fleet.caller(shop.customer), variant)

    async with gql_session(
        fleet.reader, TRANSPORT_WS, shop.other_customer.headers["Authorization"]
    ) as session:
        with pytest.raises(TransportQueryError) as refused:
            await start(session, ORDER_STATUS, {"id": order_id}).next()

    assert refused.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_low_stock_is_for_staff_only(fleet: Fleet) -> None:
    async with gql_session(
        fleet.reader, LEGACY_WS, fleet.shop.customer.headers["Authorization"]
    ) as session:
        with pytest.raises(TransportQueryError) as refused:
            await start(session, LOW_STOCK, {"t": 3}).next()

    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_subscription_over_the_cost_limit_is_refused_before_it_starts(fleet: Fleet) -> None:
    costly = """subscription ($id: ID!) { productUpdated(productId: $id) {
      category { products(first: 100) { edges { node { reviews(first: 100) { edges { node { id } } } } } } }
    } }"""
    variant = await _variant(fleet)
    async with raw_socket(fleet.reader) as socket:
        await send(socket, {"type": "connection_init"})
        assert (await receive(socket))["type"] == "connection_ack"
        await send(
            socket,
            {
                "type": "subscribe",
                "id": "1",
                "payload": {"query": costly, "variables": {"id": variant["product"]}},
            },
        )
        message = await receive(socket)

    assert message["type"] == "error" and message["id"] == "1"
    assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_subscription_over_the_depth_limit_is_refused_before_it_starts(
    fleet: Fleet,
) -> None:
    nested = "category { " + "parent { " * 10 + "id" + " }" * 11  # deeper than the limit of 10
    deep = f"subscription ($id: ID!) {{ productUpdated(productId: $id) {{ {nested} }} }}"
    variant = await _variant(fleet)
    async with raw_socket(fleet.reader, LEGACY_WS) as socket:
        await send(socket, {"type": "connection_init"})
        assert (await receive(socket))["type"] == "connection_ack"
        await send(
            socket,
            {
                "type": "start",
                "id": "1",
                "payload": {"query": deep, "variables": {"id": variant["product"]}},
            },
        )
        message = await receive(socket)

    assert message["type"] == "error" and message["id"] == "1"
    assert "maximum depth is 10" in message["payload"]["message"]


async def test_a_bad_token_closes_the_socket_with_4403(fleet: Fleet) -> None:
    async with raw_socket(fleet.reader) as socket:
        await send(socket, {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}})
        assert await close_code(socket) == 4403


async def test_an_expiring_token_closes_the_socket_mid_stream(fleet: Fleet) -> None:
    shop = fleet.shop
    tokens = TokenService(shop.settings)
    tokens._user_ttl = 2  # a token about to expire (the setting's floor is 30 s)
    session_of = await shop.rows(
        "SELECT user_id, family_id FROM refresh_tokens WHERE user_id = :u", u=shop.customer.user_id
    )  # type: ignore[attr-defined]
    token, _ = tokens.issue_user_token(
        user_id=session_of[0].user_id, role="CUSTOMER", session_id=session_of[0].family_id
    )
    variant = await _variant(fleet)
    async with raw_socket(fleet.reader) as socket:
        await send(
            socket, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert (await receive(socket))["type"] == "connection_ack"
        await send(
            socket,
            {
                "type": "subscribe",
                "id": "p",
                "payload": {
                    "query": PRODUCT.replace(" stockQuantity", ""),
                    "variables": {"id": variant["product"]},
                },
            },
        )
        assert await close_code(socket, within=6) == 4403


async def test_protocol_errors_close_with_their_codes(fleet: Fleet) -> None:
    # an operation before connection_ack: 4401
    async with raw_socket(fleet.reader) as socket:
        await send(socket, {"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }"}})
        assert await close_code(socket) == 4401
    # no connection_init within the timeout (1 s here): 4408
    async with raw_socket(fleet.reader) as socket:
        assert await close_code(socket) == 4408
    # a second connection_init: 4429; not JSON: 4400
    async with raw_socket(fleet.reader) as socket:
        await send(socket, {"type": "connection_init"})
        await receive(socket)
        await send(socket, {"type": "connection_init"})
        assert await close_code(socket) == 4429
    async with raw_socket(fleet.reader) as socket:
        await socket.send("{not json")
        assert await close_code(socket) == 4400


async def test_a_connection_runs_a_bounded_number_of_operations(fleet: Fleet) -> None:
    variant = await _variant(fleet)
    payload = {
        "query": PRODUCT.replace(" stockQuantity", ""),
        "variables": {"id": variant["product"]},
    }
    async with raw_socket(fleet.reader) as socket:
        await send(socket, {"type": "connection_init"})
        await receive(socket)
        for number in range(4):  # the fleet allows 3
            await send(socket, {"type": "subscribe", "id": str(number), "payload": payload})
        refused = await receive(socket)
        # the same id again closes the socket (4409)
        await send(socket, {"type": "subscribe", "id": "0", "payload": payload})
        code = await close_code(socket)

    assert refused["type"] == "error" and refused["id"] == "3"
    assert "at most 3 operations" in refused["payload"][0]["message"]
    assert code == 4409


async def test_a_viewer_holds_a_bounded_number_of_connections(fleet: Fleet) -> None:
    authorization = fleet.shop.other_customer.headers["Authorization"]
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(4):  # the fleet allows 4
            socket = await stack.enter_async_context(raw_socket(fleet.reader))
            await send(
                socket, {"type": "connection_init", "payload": {"Authorization": authorization}}
            )
            assert (await receive(socket))["type"] == "connection_ack"
        extra = await stack.enter_async_context(raw_socket(fleet.reader))
        await send(extra, {"type": "connection_init", "payload": {"Authorization": authorization}})
        assert await close_code(extra) == 1008


async def test_the_server_sends_keep_alives_while_idle(fleet: Fleet) -> None:
    async with raw_socket(fleet.reader, LEGACY_WS) as socket:
        await send(socket, {"type": "connection_init"})
        assert (await receive(socket))["type"] == "connection_ack"
        assert (await receive(socket, skip=()))["type"] == "ka"


async def test_one_redis_subscription_per_process_whatever_the_subscribers(fleet: Fleet) -> None:
    settings = fleet.shop.settings
    if settings.redis_url is None:
        pytest.skip("the embedded mode has no Redis")
    channel = f"{settings.cache_key_prefix}changes"
    variant = await _variant(fleet)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            session = await stack.enter_async_context(gql_session(fleet.reader, TRANSPORT_WS, None))
            subscription = start(
                session, PRODUCT.replace(" stockQuantity", ""), {"id": variant["product"]}
            )
        await _live(subscription, fleet.caller(fleet.shop.staff), variant["product"])
        redis = Redis.from_url(settings.redis_url)
        try:
            numsub = await redis.pubsub_numsub(channel)
        finally:
            await redis.aclose()

    assert numsub == [(channel.encode(), 1)]


async def test_sigterm_closes_sockets_with_1001(fleet: Fleet) -> None:
    variant = await _variant(fleet)
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
    variant = await _variant(fleet, offset=5)
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
        await _set_stock(staff, variant, 17)

        # then staff see it
        while _stock((await receive(backoffice))["payload"]["data"], variant["id"]) != 17:
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


async def test_the_rate_limit_refuses_subscriptions_past_the_budget(backend: Backend) -> None:
    settings = backend.settings(
        rate_limit_enabled=True,
        rate_limit_capacity=30,
        rate_limit_restore_rate=0.001,
        rate_limit_key_prefix=f"shopgraph-test:ws-limit:{uuid.uuid4().hex}:",
    )
    product = to_global_id("Product", 1)
    payload = {"query": PRODUCT.replace(" stockQuantity", ""), "variables": {"id": product}}
    with live_server(create_app(settings), ws="websockets-sansio") as base:
        async with raw_socket(base) as socket:
            await send(socket, {"type": "connection_init"})
            assert (await receive(socket))["type"] == "connection_ack"
            for number in range(15):  # each costs its admission charge and its cost
                await send(socket, {"type": "subscribe", "id": str(number), "payload": payload})
            await send(socket, {"type": "subscribe", "id": "last", "payload": payload})
            while (message := await receive(socket))["id"] != "last":
                pass

    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "THROTTLED"


async def test_draining_closes_streams_at_once_and_http_is_still_served(fleet: Fleet) -> None:
    variant = await _variant(fleet)
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
