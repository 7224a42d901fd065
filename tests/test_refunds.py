"""refundOrder: staff give a paid order's money back once; the units go back in stock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.platform.global_ids import from_global_id, to_global_id
from app.services import orders
from app.services.payments.gateway import SandboxGateway
from tests.checkout_shop import (
    ERRORS,
    checkout,
    fill_cart,
    new_customer,
    paid,
    runs_jobs,
    stock_of,
    variant_with_stock,
)
from tests.conftest import Backend
from tests.private_shop import Shop, private_shop
from tests.table_snapshot import assert_unchanged

REFUND = f"""
mutation ($id: ID!) {{
  refundOrder(orderId: $id) {{ order {{ id status payments {{ status }} }} {ERRORS} }}
}}
"""
UPDATE_STATUS = f"""
mutation ($id: ID!, $status: OrderStatus!) {{
  updateOrderStatus(orderId: $id, status: $status) {{ order {{ status }} {ERRORS} }}
}}
"""


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop, served with its caches on (as in production), running its jobs."""
    async with private_shop(
        backend,
        tmp_path_factory.mktemp("refunds"),
        "refunds",
        cache_enabled=True,
        **runs_jobs("refunds"),
    ) as made:
        yield made


async def paid_order(shop: Shop, variant: dict[str, Any], units: int = 2) -> dict[str, Any]:
    """A PAID order of `units` of the variant, by a new customer."""
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], units)
    payload = await checkout(buyer)
    assert payload["userErrors"] == [], payload
    return await paid(buyer, payload["order"])  # type: ignore[no-any-return]  # captured by its job


async def moved(shop: Shop, order: dict[str, Any], *statuses: str) -> None:
    """Staff move the order through these statuses."""
    for status in statuses:
        data = await shop.staff.query(UPDATE_STATUS, {"id": order["id"], "status": status})
        assert data["updateOrderStatus"]["userErrors"] == [], data


async def history(shop: Shop, order: dict[str, Any]) -> list[str]:
    """The order's payment history, oldest first."""
    rows = await shop.rows(
        "SELECT e.status FROM payment_events e JOIN payments p ON p.id = e.payment_id"
        " WHERE p.order_id = :o ORDER BY e.id",
        o=from_global_id(order["id"]).pk,
    )
    return [row.status for row in rows]


@pytest.mark.parametrize("before_refund", [(), ("FULFILLED",)])
async def test_staff_refund_a_paid_or_fulfilled_order(
    shop: Shop, before_refund: tuple[str, ...]
) -> None:
    # given a paid order of 2 units (packed, in the second case)
    variant = await variant_with_stock(shop, 10, offset=len(before_refund))
    order = await paid_order(shop, variant)
    await moved(shop, order, *before_refund)
    assert await stock_of(shop, variant) == 8

    # when staff refund it
    payload = (await shop.staff.query(REFUND, {"id": order["id"]}))["refundOrder"]

    # then it is REFUNDED, its payment too (with the step in its history), the units are back
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "REFUNDED"
    assert payload["order"]["payments"] == [{"status": "REFUNDED"}]
    assert await history(shop, order) == ["AUTHORIZED", "CAPTURED", "REFUNDED"]
    assert await stock_of(shop, variant) == 10


async def test_every_bad_refund_gets_a_user_error_and_changes_nothing(shop: Shop) -> None:
    variant = await variant_with_stock(shop, 20, offset=2)
    refunded = await paid_order(shop, variant)
    assert not (await shop.staff.query(REFUND, {"id": refunded["id"]}))["refundOrder"]["userErrors"]
    shipped, cancelled = await paid_order(shop, variant), await paid_order(shop, variant)
    await moved(shop, shipped, "FULFILLED", "SHIPPED")
    await moved(shop, cancelled, "CANCELLED")
    cases = [
        ("refunded twice", refunded["id"], "ILLEGAL_TRANSITION"),
        ("shipped", shipped["id"], "ILLEGAL_TRANSITION"),
        ("cancelled", cancelled["id"], "ILLEGAL_TRANSITION"),
        ("unknown order", to_global_id("Order", 10**6), "NOT_FOUND"),
    ]
    for name, order_id, code in cases:
        # given the tables as they are
        before = await shop.snapshot()
        # when staff refund it
        payload = (await shop.staff.query(REFUND, {"id": order_id}))["refundOrder"]
        # then one userError on orderId, and no table changed
        assert payload["order"] is None, name
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, ["orderId"])], (
            name,
            payload,
        )
        assert_unchanged(before, await shop.snapshot(), name)

    # and a refund of another type's id is INVALID
    payload = (await shop.staff.query(REFUND, {"id": to_global_id("Product", 1)}))["refundOrder"]
    assert [e["code"] for e in payload["userErrors"]] == ["INVALID"]


async def test_only_staff_refund(shop: Shop) -> None:
    # given a paid order
    variant = await variant_with_stock(shop, 10, offset=3)
    order = await paid_order(shop, variant)
    before = await shop.snapshot()

    # when a customer (even another one) and a guest ask for a refund
    for caller in (shop.customer, shop.anonymous):
        errors = await caller.errors(REFUND, {"id": order["id"]})
        # then they may not
        assert errors[0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}
    assert_unchanged(before, await shop.snapshot(), "not staff")


async def test_a_refund_retried_after_a_lost_commit_gives_the_money_back_once(shop: Shop) -> None:
    # given a paid order whose refund reached the gateway once already, but whose commit was
    # lost (the gateway holds the refund under the order's payment key; the database does not)
    variant = await variant_with_stock(shop, 10, offset=4)
    order = await paid_order(shop, variant, units=1)
    (payment,) = await shop.rows(
        "SELECT id, capture_ref, amount_minor FROM payments WHERE order_id = :o",
        o=from_global_id(order["id"]).pk,
    )
    gateway = SandboxGateway()
    first = await gateway.refund(
        capture_id=payment.capture_ref,
        amount=payment.amount_minor,
        idempotency_key=f"refund:{payment.id}",
    )

    # when the refund is run again
    row = await orders.refund_order(
        shop.db, gateway=gateway, order_id=from_global_id(order["id"]).pk
    )

    # then it succeeds with the same gateway refund (not a second one, which the gateway
    # would decline: nothing is left to refund)
    assert row.status == "REFUNDED"
    (event,) = await shop.rows(
        "SELECT gateway_ref FROM payment_events WHERE payment_id = :p AND status = 'REFUNDED'",
        p=payment.id,
    )
    assert event.gateway_ref == first.refund_id  # type: ignore[union-attr]
