"""Checkout: stock reserved atomically, idempotency keys, payments, and refusals that write nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from app.main import payment_gateway_for
from app.platform.global_ids import to_global_id
from app.services.payments.gateway import NoGateway, SandboxGateway
from app.settings import Environment, Settings
from tests.checkout_shop import (
    ADDRESS,
    checkout,
    fill_cart,
    new_customer,
    paid,
    runs_jobs,
    stock_of,
    variant_with_stock,
)
from tests.conftest import PRODUCTION_DATA_KEYS, Backend
from tests.private_shop import Shop, jobs_idle, private_shop

SHIPPING_MINOR = 495
MY_CART = "{ me { cart { lines { quantity } } } }"


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop with a shipping fee, served with its caches on (as in production)."""
    async with private_shop(
        backend,
        tmp_path_factory.mktemp("checkout"),
        "checkout",
        cache_enabled=True,
        shipping_fee_minor=SHIPPING_MINOR,
        register_max_per_ip=100_000,
        **runs_jobs("checkout"),
    ) as made:
        yield made
        await jobs_idle(made)  # no job is cut off mid-way when the server stops


def codes(payload: dict[str, Any]) -> list[str]:
    """The userError codes of a payload."""
    return [error["code"] for error in payload["userErrors"]]


async def test_a_checkout_makes_an_order_with_server_totals_that_its_capture_job_pays(
    shop: Shop,
) -> None:
    # given a customer with two units of a variant in their cart
    variant = await variant_with_stock(shop, 10)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 2)

    # when they check out
    payload = await checkout(buyer)

    # then the order awaits its payment's capture, with price snapshots and totals computed
    # by the server, and the payment authorized
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "PENDING_PAYMENT"
    assert order["number"].startswith("SG-")
    (line,) = order["lines"]
    assert line["sku"] == variant["sku"] and line["quantity"] == 2
    assert line["unitPrice"]["amount"] == str(variant["price"])
    assert line["variant"] == {"id": variant["id"]}
    subtotal = variant["price"] * 2
    assert order["subtotal"] == {"amount": str(subtotal), "currency": "EUR"}
    assert order["shipping"] == {"amount": "4.95"}
    assert Decimal(order["total"]["amount"]) == subtotal + Decimal(SHIPPING_MINOR) / 100
    assert order["shippingAddress"] == ADDRESS
    assert order["customer"] == {"id": to_global_id("User", buyer.user_id)}  # type: ignore[attr-defined]
    # and the stock is reserved, the cart is empty
    assert await stock_of(shop, variant) == 8
    assert (await buyer.query(MY_CART))["me"]["cart"]["lines"] == []
    # and the capture job makes it PAID, the payment CAPTURED for the order's total
    order = await paid(buyer, order)
    assert order["status"] == "PAID"
    (payment,) = order["payments"]
    assert payment["gateway"] == "test" and payment["status"] == "CAPTURED"
    assert payment["amount"] == order["total"]
    history = await shop.rows(
        "SELECT e.status FROM payment_events e JOIN payments p ON p.id = e.payment_id"
        " JOIN orders o ON o.id = p.order_id WHERE o.number = :n ORDER BY e.id",
        n=order["number"],
    )
    assert [row.status for row in history] == ["AUTHORIZED", "CAPTURED"]


async def test_twenty_concurrent_checkouts_of_five_units_make_five_orders(shop: Shop) -> None:
    # given a variant with 5 units, and 20 customers with one unit each in their carts
    variant = await variant_with_stock(shop, 5, offset=1)
    buyers = [await new_customer(shop) for _ in range(20)]
    for buyer in buyers:
        await fill_cart(buyer, variant["id"], 1)

    # when all of them check out at once
    payloads = await asyncio.gather(*(checkout(buyer) for buyer in buyers))

    # then exactly 5 orders are made, the stock is 0, and 15 are told OUT_OF_STOCK naming the SKU
    paid = [p for p in payloads if p["order"] is not None]
    refused = [p for p in payloads if p["order"] is None]
    assert len(paid) == 5 and len(refused) == 15
    assert all(codes(p) == ["OUT_OF_STOCK"] for p in refused)
    assert all(variant["sku"] in p["userErrors"][0]["message"] for p in refused)
    assert await stock_of(shop, variant) == 0
    ordered = await shop.value(
        "SELECT count(*) FROM order_lines WHERE variant_id = :id", id=variant["pk"]
    )
    assert ordered == 5


async def test_out_of_stock_names_the_skus_and_writes_nothing(shop: Shop) -> None:
    # given a cart with one line in stock and one line with more units than there are
    plenty = await variant_with_stock(shop, 10, offset=2)
    scarce = await variant_with_stock(shop, 1, offset=3)
    buyer = await new_customer(shop)
    await fill_cart(buyer, plenty["id"], 1)
    await fill_cart(buyer, scarce["id"], 2)
    before = await shop.snapshot()

    # when they check out
    payload = await checkout(buyer)

    # then OUT_OF_STOCK names the short SKU only, and no stock was taken from either line
    assert payload["order"] is None and codes(payload) == ["OUT_OF_STOCK"]
    message = payload["userErrors"][0]["message"]
    assert scarce["sku"] in message and plenty["sku"] not in message
    assert await shop.snapshot() == before


async def test_a_declined_card_leaves_stock_unchanged_and_no_order(shop: Shop) -> None:
    # given a cart
    variant = await variant_with_stock(shop, 3, offset=4)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 2)
    before = await shop.snapshot()

    # when the card is declined
    payload = await checkout(buyer, payment_token="tok_declined")

    # then PAYMENT_DECLINED, and nothing was written: no order, no payment, stock as it was
    assert payload["order"] is None and codes(payload) == ["PAYMENT_DECLINED"]
    assert payload["userErrors"][0]["field"] == ["input", "paymentToken"]
    assert await shop.snapshot() == before
    assert await stock_of(shop, variant) == 3

    # and the same key with a good card then goes through
    order = (await checkout(buyer, payment_token="tok_success"))["order"]
    assert (await paid(buyer, order))["status"] == "PAID"


async def test_a_transient_capture_failure_is_retried_with_backoff_and_recorded(
    shop: Shop,
) -> None:
    # given a cart
    variant = await variant_with_stock(shop, 3, offset=5)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 1)

    # when the gateway fails the first capture attempt
    payload = await checkout(buyer, payment_token="tok_transient")

    # then the capture job's retry captured it, and the payment's history shows both attempts
    assert payload["userErrors"] == [] and payload["order"]["status"] == "PENDING_PAYMENT"
    order = await paid(buyer, payload["order"])
    assert order["status"] == "PAID"
    (payment,) = order["payments"]
    assert payment["status"] == "CAPTURED"
    history = await shop.rows(
        "SELECT e.status, e.gateway_ref, e.created_at FROM payment_events e JOIN payments p"
        " ON p.id = e.payment_id JOIN orders o ON o.id = p.order_id WHERE o.number = :n"
        " ORDER BY e.id",
        n=payload["order"]["number"],
    )
    assert [row.status for row in history] == ["AUTHORIZED", "FAILED", "CAPTURED"]
    assert history[0].gateway_ref.startswith("auth_") and history[2].gateway_ref.startswith("cap_")
    # the retry waited its backoff (JOB_BACKOFF_SECONDS for the first)
    failed, captured = (datetime.fromisoformat(str(row.created_at)) for row in history[1:])
    waited = (captured - failed).total_seconds()
    assert waited >= shop.settings.job_backoff_seconds


async def orders_of(shop: Shop, user_id: int) -> tuple[int, int]:
    """How many orders and payments a customer has."""
    count = await shop.value("SELECT count(*) FROM orders WHERE user_id = :u", u=user_id)
    paid = await shop.value(
        "SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.user_id = :u",
        u=user_id,
    )
    return int(count), int(paid)


async def test_a_repeated_checkout_with_one_key_makes_one_order_and_one_payment(
    shop: Shop,
) -> None:
    # given a checkout that went through
    variant = await variant_with_stock(shop, 10, offset=6)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 1)
    key = uuid.uuid4().hex
    first = await checkout(buyer, key=key)

    # when the same checkout is sent again with the same key
    again = await checkout(buyer, key=key)

    # then the same order comes back, and there is one order and one payment
    assert again["userErrors"] == [] and again["order"]["id"] == first["order"]["id"]
    assert await orders_of(shop, buyer.user_id) == (1, 1)  # type: ignore[attr-defined]
    assert await stock_of(shop, variant) == 9


async def test_concurrent_checkouts_with_one_key_make_one_order_and_one_payment(
    shop: Shop,
) -> None:
    # given a cart
    variant = await variant_with_stock(shop, 10, offset=7)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 2)
    key = uuid.uuid4().hex

    # when five requests with the same key arrive at the same time
    payloads = await asyncio.gather(*(checkout(buyer, key=key) for _ in range(5)))

    # then all of them answer with the one order, charged once, stock taken once
    assert all(p["userErrors"] == [] for p in payloads), payloads
    assert len({p["order"]["id"] for p in payloads}) == 1
    assert await orders_of(shop, buyer.user_id) == (1, 1)  # type: ignore[attr-defined]
    assert await stock_of(shop, variant) == 8


async def test_concurrent_checkouts_of_two_carts_with_one_key_make_one_order(shop: Shop) -> None:
    # given a customer's own cart and a guest cart they hold the token of, both filled
    variant = await variant_with_stock(shop, 10, offset=8)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 1)
    guest_token = await fill_cart(shop.anonymous, variant["id"], 1)
    key = uuid.uuid4().hex

    # when both are checked out with the same key at the same time
    mine, guests = await asyncio.gather(
        checkout(buyer, key=key), checkout(buyer, key=key, cart_token=guest_token)
    )

    # then the key made one order; the other request is told the key was reused
    assert sorted(codes(mine) + codes(guests)) == ["IDEMPOTENCY_KEY_REUSED"]
    assert await orders_of(shop, buyer.user_id) == (1, 1)  # type: ignore[attr-defined]
    assert await stock_of(shop, variant) == 9


async def test_every_bad_checkout_gets_a_user_error_and_changes_nothing(shop: Shop) -> None:
    variant = await variant_with_stock(shop, 10, offset=9)
    buyer = await new_customer(shop)
    other = await new_customer(shop)
    others_cart = await fill_cart(other, variant["id"], 1)
    empty_buyer = await new_customer(shop)
    used_key = uuid.uuid4().hex
    await fill_cart(buyer, variant["id"], 1)
    assert (await checkout(buyer, key=used_key))["order"] is not None
    await fill_cart(buyer, variant["id"], 3)  # another cart content for the used key

    bad_address = {**ADDRESS, "country": "Germany"}
    cases: list[tuple[str, Any, str, list[str] | None]] = [
        ("unknown cart", checkout(buyer, cart_token="no-such-cart"), "NOT_FOUND",
         ["input", "cartToken"]),
        ("someone else's cart", checkout(buyer, cart_token=others_cart), "FORBIDDEN",
         ["input", "cartToken"]),
        ("empty cart", checkout(empty_buyer), "INVALID", ["input", "cartToken"]),
        ("declined card", checkout(buyer, payment_token="tok_declined"), "PAYMENT_DECLINED",
         ["input", "paymentToken"]),
        ("unknown payment token", checkout(buyer, payment_token="tok_bogus"), "PAYMENT_DECLINED",
         ["input", "paymentToken"]),
        ("reused key, other cart", checkout(buyer, key=used_key), "IDEMPOTENCY_KEY_REUSED",
         ["input", "idempotencyKey"]),
        ("bad address", checkout(buyer, address=bad_address), "INVALID",
         ["input", "shippingAddress", "country"]),
        ("blank address line", checkout(buyer, address={**ADDRESS, "line1": "  "}), "REQUIRED",
         ["input", "shippingAddress", "line1"]),
        ("no address", checkout(buyer, address=None), "REQUIRED", ["input", "shippingAddress"]),
        ("unknown address", checkout(
            buyer, address=None, address_id=to_global_id("Address", 10**6)), "NOT_FOUND",
         ["input", "addressId"]),
        ("blank key", checkout(buyer, key=" "), "INVALID", ["input", "idempotencyKey"]),
        ("huge key", checkout(buyer, key="k" * 101), "INVALID", ["input", "idempotencyKey"]),
    ]  # fmt: skip
    for name, call, code, field in cases:
        # given the tables as they are
        before = await shop.snapshot()
        # when the bad checkout is sent
        payload = await call
        # then one userError with its code and path, and nothing changed
        assert payload["order"] is None, name
        assert codes(payload) == [code], (name, payload)
        assert payload["userErrors"][0]["field"] == field, (name, payload)
        assert await shop.snapshot() == before, name


async def test_a_guest_cannot_check_out(shop: Shop) -> None:
    # given a guest cart
    variant = await variant_with_stock(shop, 10, offset=10)
    token = await fill_cart(shop.anonymous, variant["id"], 1)
    before = await shop.snapshot()

    # when the guest checks out
    errors = await shop.anonymous.errors(
        "mutation ($i: CheckoutInput!) { checkout(input: $i) { order { id } } }",
        {"i": {"cartToken": token, "shippingAddress": ADDRESS, "paymentToken": "tok_success",
               "idempotencyKey": "guest"}},
    )  # fmt: skip

    # then they are asked to sign in, and nothing was written
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await shop.snapshot() == before


async def test_the_database_holds_no_plaintext_address(shop: Shop) -> None:
    # given an order shipped to a recognisable address
    variant = await variant_with_stock(shop, 10, offset=11)
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 1)
    payload = await checkout(buyer)
    assert payload["order"]["shippingAddress"] == ADDRESS

    # when the raw rows of the order are read
    (row,) = await shop.rows("SELECT * FROM orders WHERE number = :n", n=payload["order"]["number"])
    raw = " ".join(str(value) for value in row)

    # then no part of the address is there in plaintext; the sealed values carry a key id
    for name in ("fullName", "line1", "line2", "city", "postalCode"):
        assert ADDRESS[name] not in raw, name
        assert ADDRESS[name].lower() not in raw.lower(), name
    assert row.ship_line1.startswith("sg1.") and row.ship_country == "DE"


PRODUCT_STOCK = "query ($id: ID!) { product(id: $id) { variants { id inStock } } }"


async def in_stock(shop: Shop, variant: dict[str, Any]) -> bool:
    """Whether an anonymous read of the variant's product says the variant is in stock."""
    product_pk = await shop.value(
        "SELECT product_id FROM product_variants WHERE id = :id", id=variant["pk"]
    )
    data = await shop.anonymous.query(PRODUCT_STOCK, {"id": to_global_id("Product", product_pk)})
    (found,) = [v for v in data["product"]["variants"] if v["id"] == variant["id"]]
    return bool(found["inStock"])


async def test_after_a_checkout_no_cached_read_shows_the_old_stock(shop: Shop) -> None:
    # given the last unit of a variant, read (and cached) as in stock
    variant = await variant_with_stock(shop, 1, offset=12)
    assert await in_stock(shop, variant) and await in_stock(shop, variant)

    # when a customer buys it
    buyer = await new_customer(shop)
    await fill_cart(buyer, variant["id"], 1)
    assert (await checkout(buyer))["order"] is not None

    # then the next read says it is out of stock (the checkout's change events reached the caches)
    assert not await in_stock(shop, variant)


ADD_ADDRESS = """
mutation ($input: AddressInput!) { addAddress(input: $input) { address { id } userErrors { code } } }
"""


async def test_a_checkout_ships_to_an_address_of_the_book_and_not_to_someone_elses(
    shop: Shop,
) -> None:
    # given a customer with an address in their book, and another customer's address
    variant = await variant_with_stock(shop, 10, offset=13)
    buyer, other = await new_customer(shop), await new_customer(shop)
    mine = (await buyer.query(ADD_ADDRESS, {"input": ADDRESS}))["addAddress"]["address"]["id"]
    theirs = (await other.query(ADD_ADDRESS, {"input": {**ADDRESS, "city": "Halle"}}))[
        "addAddress"
    ]["address"]["id"]
    await fill_cart(buyer, variant["id"], 1)

    # when they check out to the other customer's address, then to their own
    before = await shop.snapshot()
    refused = await checkout(buyer, address=None, address_id=theirs)
    after = await shop.snapshot()
    shipped = await checkout(buyer, address=None, address_id=mine)

    # then the first is NOT_FOUND (and wrote nothing), the second ships to their address
    assert refused["order"] is None and codes(refused) == ["NOT_FOUND"] and after == before
    assert shipped["userErrors"] == [] and shipped["order"]["shippingAddress"] == ADDRESS


async def test_without_a_payment_gateway_every_checkout_is_declined_and_writes_nothing(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # given a shop that names no gateway (what production runs unless it asks for one)
    async with private_shop(
        backend, tmp_path_factory.mktemp("nogateway"), "nogateway", payment_gateway="none"
    ) as shop:
        variant = await variant_with_stock(shop, 3)
        buyer = await new_customer(shop)
        await fill_cart(buyer, variant["id"], 1)
        before = await shop.snapshot()

        # when a customer checks out with the test gateway's good token
        payload = await checkout(buyer, payment_token="tok_success")

        # then it is declined, saying why, and nothing was written
        assert payload["order"] is None and codes(payload) == ["PAYMENT_DECLINED"]
        assert "not configured" in payload["userErrors"][0]["message"]
        assert await shop.snapshot() == before
        assert await stock_of(shop, variant) == 3


def test_production_runs_the_test_gateway_only_when_asked() -> None:
    production = Settings(env=Environment.PRODUCTION, secret_key="s" * 64, **PRODUCTION_DATA_KEYS)
    assert isinstance(payment_gateway_for(production), NoGateway)
    asked = production.model_copy(update={"payment_gateway": "test"})
    assert isinstance(payment_gateway_for(asked), SandboxGateway)
    assert isinstance(payment_gateway_for(Settings()), SandboxGateway)  # development
