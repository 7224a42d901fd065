"""Orders: who may read one, a customer's orders, cancelling, and the state machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.db import count_statements
from app.models import OrderStatus
from app.platform.global_ids import to_global_id
from app.services.orders import TRANSITIONS
from tests.checkout_shop import (
    ERRORS,
    ORDER_FIELDS,
    checkout,
    fill_cart,
    new_customer,
    paid,
    runs_jobs,
    stock_of,
    variant_with_stock,
)
from tests.conftest import Backend, GraphQLClient
from tests.private_shop import Shop, jobs_idle, private_shop
from tests.test_partner_scopes import Partner, partner_client
from tests.test_partners import create_partner

ORDER = f"query ($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
MY_ORDERS = """
query ($first: Int, $after: String) {
  me { orders(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id number status } }
  } }
}
"""
CANCEL = f"""
mutation ($id: ID!) {{ cancelOrder(orderId: $id) {{ order {{ id status payments {{ status }} }} {ERRORS} }} }}
"""
LISTING = """
query ($filter: OrderFilter, $sortBy: OrderSort, $first: Int, $after: String) {
  orders(filter: $filter, sortBy: $sortBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { number status total { amount } } }
  }
}
"""
UPDATE_STATUS = f"""
mutation ($id: ID!, $status: OrderStatus!) {{
  updateOrderStatus(orderId: $id, status: $status) {{ order {{ id status }} {ERRORS} }}
}}
"""


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop, served with its caches on (as in production)."""
    async with private_shop(
        backend,
        tmp_path_factory.mktemp("orders"),
        "orders",
        cache_enabled=True,
        **runs_jobs("orders"),
    ) as made:
        yield made
        await jobs_idle(made)  # no job is cut off mid-way when the server stops


async def placed(
    shop: Shop, buyer: GraphQLClient, variant: dict[str, Any], units: int = 1
) -> dict[str, Any]:
    """A paid order of `units` of the variant."""
    await fill_cart(buyer, variant["id"], units)
    payload = await checkout(buyer)
    assert payload["userErrors"] == [], payload
    return await paid(buyer, payload["order"])  # type: ignore[no-any-return]


async def test_an_order_is_read_by_its_customer_and_staff_only(shop: Shop) -> None:
    # given an order
    variant = await variant_with_stock(shop, 10)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)

    # when its customer, staff, another customer and a guest read it
    mine = (await buyer.query(ORDER, {"id": order["id"]}))["order"]
    staffs = (await shop.staff.query(ORDER, {"id": order["id"]}))["order"]
    others = (await shop.other_customer.query(ORDER, {"id": order["id"]}))["order"]
    guests = (await shop.anonymous.query(ORDER, {"id": order["id"]}))["order"]

    # then the customer and staff see it as checkout returned it; others see nothing
    assert mine == order and staffs == order
    assert others is None and guests is None


async def test_order_responses_are_private_and_never_cached(shop: Shop) -> None:
    # given an order read once
    variant = await variant_with_stock(shop, 10, offset=1)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)
    await buyer.query(ORDER, {"id": order["id"]})

    # when it is read again after a change
    await buyer.query(CANCEL, {"id": order["id"]})
    response = await buyer.post(ORDER, {"id": order["id"]})

    # then the answer is the new state, and not cacheable
    assert response.json()["data"]["order"]["status"] == "CANCELLED"
    assert "public" not in response.headers.get("cache-control", "")


async def test_me_orders_pages_newest_first(shop: Shop) -> None:
    # given a customer with three orders
    variant = await variant_with_stock(shop, 10, offset=2)
    buyer = await new_customer(shop)
    numbers = [(await placed(shop, buyer, variant))["number"] for _ in range(3)]

    # when they page through their orders two at a time
    first = (await buyer.query(MY_ORDERS, {"first": 2}))["me"]["orders"]
    cursor = first["pageInfo"]["endCursor"]
    second = (await buyer.query(MY_ORDERS, {"first": 2, "after": cursor}))["me"]["orders"]

    # then they see all three, newest first, and the count
    seen = [edge["node"]["number"] for edge in first["edges"] + second["edges"]]
    assert seen == list(reversed(numbers))
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"]
    assert not second["pageInfo"]["hasNextPage"]


async def test_cancelling_a_paid_order_returns_the_stock_and_refunds(shop: Shop) -> None:
    # given a paid order of 3 units
    variant = await variant_with_stock(shop, 10, offset=3)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant, 3)
    assert await stock_of(shop, variant) == 7

    # when its customer cancels it
    payload = (await buyer.query(CANCEL, {"id": order["id"]}))["cancelOrder"]

    # then it is cancelled, the units are back in stock and the payment is refunded
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "CANCELLED"
    assert payload["order"]["payments"] == [{"status": "REFUNDED"}]
    assert await stock_of(shop, variant) == 10


async def test_staff_move_an_order_along_the_state_machine(shop: Shop) -> None:
    # given a paid order
    variant = await variant_with_stock(shop, 10, offset=4)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)

    # when staff fulfil, ship and deliver it
    for status in ("FULFILLED", "SHIPPED", "DELIVERED"):
        payload = await shop.staff.query(UPDATE_STATUS, {"id": order["id"], "status": status})
        # then each step is taken
        assert payload["updateOrderStatus"]["userErrors"] == []
        assert payload["updateOrderStatus"]["order"]["status"] == status


def test_the_state_machine_allows_only_its_steps() -> None:
    # the steps are there, and nothing leaves DELIVERED, CANCELLED or REFUNDED
    assert TRANSITIONS[OrderStatus.PENDING_PAYMENT] >= {OrderStatus.PAID, OrderStatus.CANCELLED}
    assert TRANSITIONS[OrderStatus.PAID] == {
        OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED
    }  # fmt: skip
    assert TRANSITIONS[OrderStatus.FULFILLED] == {OrderStatus.SHIPPED, OrderStatus.REFUNDED}
    assert TRANSITIONS[OrderStatus.SHIPPED] == {OrderStatus.DELIVERED}
    for final in (OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        assert TRANSITIONS[final] == frozenset()


async def test_bad_order_changes_get_a_user_error_and_change_nothing(shop: Shop) -> None:
    variant = await variant_with_stock(shop, 10, offset=5)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)
    shipped = await placed(shop, buyer, variant)
    for status in ("FULFILLED", "SHIPPED"):
        await shop.staff.query(UPDATE_STATUS, {"id": shipped["id"], "status": status})
    unknown = to_global_id("Order", 10**6)

    cases: list[tuple[str, GraphQLClient, str, dict[str, Any], str, list[str]]] = [
        ("skip a step", shop.staff, UPDATE_STATUS, {"id": order["id"], "status": "DELIVERED"},
         "ILLEGAL_TRANSITION", ["status"]),
        ("back a step", shop.staff, UPDATE_STATUS, {"id": shipped["id"], "status": "PAID"},
         "ILLEGAL_TRANSITION", ["status"]),
        ("cancel a shipped order", buyer, CANCEL, {"id": shipped["id"]},
         "ILLEGAL_TRANSITION", ["status"]),
        ("someone else's order", shop.other_customer, CANCEL, {"id": order["id"]},
         "NOT_FOUND", ["orderId"]),
        ("unknown order", shop.staff, UPDATE_STATUS, {"id": unknown, "status": "FULFILLED"},
         "NOT_FOUND", ["orderId"]),
    ]  # fmt: skip
    for name, caller, document, variables, code, field in cases:
        # given the tables as they are
        before = await shop.snapshot()
        # when the bad change is sent
        data = await caller.query(document, variables)
        (payload,) = data.values()
        # then one userError with its code and path, and nothing changed
        assert payload["order"] is None, name
        assert [e["code"] for e in payload["userErrors"]] == [code], (name, payload)
        assert payload["userErrors"][0]["field"] == field, (name, payload)
        assert await shop.snapshot() == before, name


async def test_only_staff_update_an_order_status(shop: Shop) -> None:
    # given an order
    variant = await variant_with_stock(shop, 10, offset=6)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)
    before = await shop.snapshot()

    # when its customer tries to move it
    errors = await buyer.errors(UPDATE_STATUS, {"id": order["id"], "status": "FULFILLED"})

    # then they may not, and nothing changed
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert await shop.snapshot() == before


async def test_staff_list_orders_by_customer_and_status_sorted_by_total(shop: Shop) -> None:
    # given a customer with orders of 1, 3 and 2 units, the 2-unit one cancelled
    variant = await variant_with_stock(shop, 20, offset=7)
    buyer = await new_customer(shop)
    one, three, two = [await placed(shop, buyer, variant, units) for units in (1, 3, 2)]
    await buyer.query(CANCEL, {"id": two["id"]})
    email = buyer.email.upper()  # type: ignore[attr-defined]

    # when staff list that customer's orders by total, smallest first, one per page
    sort = {"field": "TOTAL", "direction": "ASC"}
    first = (await shop.staff.query(
        LISTING, {"filter": {"customerEmail": email}, "sortBy": sort, "first": 1}
    ))["orders"]  # fmt: skip
    rest = (await shop.staff.query(
        LISTING, {"filter": {"customerEmail": email}, "sortBy": sort,
                  "after": first["pageInfo"]["endCursor"]},
    ))["orders"]  # fmt: skip
    paid = (await shop.staff.query(
        LISTING, {"filter": {"customerEmail": email, "status": "PAID"}}
    ))["orders"]  # fmt: skip

    # then the pages hold all three in total order, and the status filter keeps the paid ones
    numbers = [edge["node"]["number"] for edge in first["edges"] + rest["edges"]]
    assert numbers == [one["number"], two["number"], three["number"]]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"]
    assert [edge["node"]["number"] for edge in paid["edges"]] == [three["number"], one["number"]]
    assert paid["totalCount"] == 2


async def test_only_staff_list_orders(shop: Shop) -> None:
    # when a customer and a guest ask for the order listing
    for caller in (shop.customer, shop.anonymous):
        errors = await caller.errors(LISTING, {})
        # then they may not
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"


PARTNER_ORDER = "query ($id: ID!) { order(id: $id) { number status total { amount } } }"
PARTNER_LISTING = "{ orders(first: 5) { totalCount edges { node { number } } } }"


async def test_a_partner_with_orders_read_reads_orders_and_one_without_cannot(
    shop: Shop,
) -> None:
    # given an order, and a partner holding catalog:read and orders:read
    variant = await variant_with_stock(shop, 10, offset=8)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)
    made, _ = create_partner(shop.settings, "--scope=catalog:read", "--scope=orders:read")
    partner = Partner(made, shop.settings)

    # when it reads the order and lists orders with orders:read
    reader = await partner_client(shop.http, partner, "catalog:read orders:read")
    read = (await reader.query(PARTNER_ORDER, {"id": order["id"]}))["order"]
    listed = (await reader.query(PARTNER_LISTING))["orders"]

    # then it sees them
    assert read == {
        "number": order["number"],
        "status": "PAID",
        "total": {"amount": order["total"]["amount"]},
    }
    assert listed["totalCount"] >= 1

    # but not the customer's email: that is for the customer and staff only
    response = await reader.post(
        "query ($id: ID!) { order(id: $id) { contactEmail } }", {"id": order["id"]}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # and with a token narrowed to catalog:read, the order fields are refused, with no data
    catalog_only = await partner_client(shop.http, partner, "catalog:read")
    for document, variables in ((PARTNER_ORDER, {"id": order["id"]}), (PARTNER_LISTING, None)):
        response = await catalog_only.post(document, variables)
        body = response.json()
        assert body.get("data") is None, body
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


ORDERS_DEEP = """
{ me { orders(first: 10) { totalCount edges { node {
  number lines { sku variant { sku product { name } } } payments { status } customer { fullName }
} } } } }
"""


async def test_a_nested_orders_query_runs_one_statement_per_level_whatever_the_count(
    shop: Shop,
) -> None:
    # given a customer with one order and a customer with four, of two lines each
    first = await variant_with_stock(shop, 50, offset=9)
    second = await variant_with_stock(shop, 50, offset=10)
    few, many = await new_customer(shop), await new_customer(shop)
    for buyer, orders in ((few, 1), (many, 4)):
        for _ in range(orders):
            await fill_cart(buyer, first["id"], 1)
            await placed(shop, buyer, second)

    # when each reads their orders with lines, variants, products, payments and customer
    # (after one read each, so the entity cache holds the same catalog rows for both)
    for buyer in (few, many):
        await buyer.query(ORDERS_DEEP)
    counts = []
    for buyer in (few, many):
        with count_statements() as counter:
            data = await buyer.query(ORDERS_DEEP)
        counts.append(counter.count)
        assert all(len(e["node"]["lines"]) == 2 for e in data["me"]["orders"]["edges"])

    # then both ran the same number of statements: loaders batch every relation level
    assert counts[0] == counts[1], counts


NODE_ORDER = "query ($id: ID!) { node(id: $id) { id ... on Order { number status } } }"


async def test_node_fetches_an_order_for_those_who_may_read_it(shop: Shop) -> None:
    # given an order
    variant = await variant_with_stock(shop, 10, offset=11)
    buyer = await new_customer(shop)
    order = await placed(shop, buyer, variant)

    # when its customer, staff, another customer and a guest fetch it by node(id)
    seen = [
        (await caller.query(NODE_ORDER, {"id": order["id"]}))["node"]
        for caller in (buyer, shop.staff, shop.other_customer, shop.anonymous)
    ]

    # then the customer and staff get it, the others null
    expected = {"id": order["id"], "number": order["number"], "status": "PAID"}
    assert seen == [expected, expected, None, None]
