"""Subscriptions refused: someone else's order, staff-only fields, depth and cost limits,
bad and expiring tokens, protocol errors and their close codes, per-connection and
per-viewer caps, the rate limit; and keep-alive."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from gql.transport.exceptions import TransportQueryError

from app.main import create_app
from app.platform.global_ids import to_global_id
from app.platform.tokens import TokenService
from tests.conftest import Backend
from tests.live_server import live_server
from tests.subscription_clients import (
    LEGACY_WS,
    TRANSPORT_WS,
    close_code,
    gql_session,
    raw_socket,
    receive,
    send,
    start,
)
from tests.subscription_fleet import (
    LOW_STOCK,
    ORDER_STATUS,
    PRODUCT,
    Fleet,
    pick_variant,
    place_order,
    set_stock,
)


async def test_someone_elses_order_is_refused(fleet: Fleet) -> None:
    shop = fleet.shop
    variant = await pick_variant(fleet, offset=4)
    await set_stock(fleet.caller(shop.staff), variant, 5)
    order_id = await place_order(fleet, fleet.caller(shop.customer), variant)

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
    variant = await pick_variant(fleet)
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
    variant = await pick_variant(fleet)
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
    variant = await pick_variant(fleet)
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
    variant = await pick_variant(fleet)
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
            while (message := await receive(socket, within=30.0))["id"] != "last":
                pass

    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "THROTTLED"
