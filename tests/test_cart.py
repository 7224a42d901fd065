"""Carts: guest carts by token, customer carts, the merge on sign-in, limits, and no caching."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from app.platform.global_ids import to_global_id
from tests.caching_docs import UPDATE_PRODUCT
from tests.conftest import Backend, GraphQLClient, signed_in_client
from tests.private_shop import Shop, private_shop
from tests.table_snapshot import changed_tables

MAX_QUANTITY = 5
MAX_LINES = 3
PASSWORD = "violet-harbor-lantern-42"

ERRORS = "userErrors { field message code }"
CART_FIELDS = """
  id token
  lines { id quantity available lineTotal { amount currency } variant { id sku price { amount } } }
  subtotal { amount currency }
"""
ADD = f"""
mutation ($input: AddToCartInput!) {{ addToCart(input: $input) {{ cart {{ {CART_FIELDS} }} {ERRORS} }} }}
"""
UPDATE = f"""
mutation ($token: String, $line: ID!, $quantity: Int!) {{
  updateCartLine(cartToken: $token, lineId: $line, quantity: $quantity) {{
    cart {{ {CART_FIELDS} }} {ERRORS}
  }}
}}
"""
REMOVE = f"""
mutation ($token: String, $line: ID!) {{
  removeCartLine(cartToken: $token, lineId: $line) {{ cart {{ {CART_FIELDS} }} {ERRORS} }}
}}
"""
CART = f"query ($token: String) {{ cart(token: $token) {{ {CART_FIELDS} }} }}"
MY_CART = "{ me { cart { id token lines { quantity } } } }"
REGISTER = f"""
mutation ($input: RegisterInput!) {{ register(input: $input) {{ accessToken {ERRORS} }} }}
"""
LOGIN = f"""
mutation ($input: LoginInput!) {{ login(input: $input) {{ accessToken user {{ id }} {ERRORS} }} }}
"""
SET_STOCK = f"""
mutation ($id: ID!, $quantity: Int!) {{ setStock(variantId: $id, quantity: $quantity) {{ {ERRORS} }} }}
"""


@pytest.fixture(scope="module")
async def shop(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A private shop with small cart limits, served with its caches on (as in production)."""
    async with private_shop(
        backend,
        tmp_path_factory.mktemp("cart"),
        "cart",
        cache_enabled=True,
        max_cart_line_quantity=MAX_QUANTITY,
        max_cart_lines=MAX_LINES,
        register_max_per_ip=100_000,
    ) as made:
        yield made


@pytest.fixture(scope="module")
async def variants(shop: Shop) -> list[dict[str, Any]]:
    """Variants of published products, each with its price in minor units and plenty of stock."""
    rows = await shop.rows(
        "SELECT v.id, v.price_minor FROM product_variants v JOIN products p ON p.id = v.product_id"
        " WHERE p.is_published ORDER BY v.id LIMIT 5"
    )
    found = []
    for row in rows:
        variant_id = to_global_id("ProductVariant", row.id)
        data = await shop.staff.query(SET_STOCK, {"id": variant_id, "quantity": 1000})
        assert data["setStock"]["userErrors"] == []
        found.append({"id": variant_id, "pk": row.id, "price": Decimal(row.price_minor) / 100})
    return found


async def new_customer(shop: Shop) -> GraphQLClient:
    """A customer of their own (their cart starts empty)."""
    email = f"cart-{uuid.uuid4().hex[:10]}@example.com"
    return await signed_in_client(shop.http, shop.settings, role="CUSTOMER", email=email)


async def add(
    caller: GraphQLClient, variant: str, quantity: int, token: str | None = None
) -> dict[str, Any]:
    """The addToCart payload."""
    data = await caller.query(
        ADD, {"input": {"cartToken": token, "variantId": variant, "quantity": quantity}}
    )
    return data["addToCart"]  # type: ignore[no-any-return]


async def added(
    caller: GraphQLClient, variant: str, quantity: int, token: str | None = None
) -> dict[str, Any]:
    """The cart after an addToCart that must succeed."""
    payload = await add(caller, variant, quantity, token)
    assert payload["userErrors"] == [], payload
    return payload["cart"]  # type: ignore[no-any-return]


def quantities(cart: dict[str, Any]) -> dict[str, int]:
    """Variant ID -> quantity of a cart's lines."""
    return {line["variant"]["id"]: line["quantity"] for line in cart["lines"]}


async def test_a_guest_adds_changes_and_removes_lines(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a guest's first add, which makes a cart
    first, second = variants[0], variants[1]
    cart = await added(shop.anonymous, first["id"], 2)
    token = cart["token"]
    assert len(token) >= 32

    # when the same variant is added again, and another one
    cart = await added(shop.anonymous, first["id"], 1, token)
    cart = await added(shop.anonymous, second["id"], 1, token)

    # then there is one line per variant, quantities summed, totals from current prices
    assert quantities(cart) == {first["id"]: 3, second["id"]: 1}
    assert cart["lines"][0]["lineTotal"] == {"amount": str(first["price"] * 3), "currency": "EUR"}
    assert Decimal(cart["subtotal"]["amount"]) == first["price"] * 3 + second["price"]
    assert all(line["available"] for line in cart["lines"])
    assert (await shop.anonymous.query(CART, {"token": token}))["cart"] == cart

    # when a line's quantity is set, and the other line removed
    first_line, second_line = (line["id"] for line in cart["lines"])
    changed = (
        await shop.anonymous.query(UPDATE, {"token": token, "line": first_line, "quantity": 5})
    )["updateCartLine"]
    removed = (await shop.anonymous.query(REMOVE, {"token": token, "line": second_line}))[
        "removeCartLine"
    ]

    # then the cart shows it, and so does the database
    assert changed["userErrors"] == [] and quantities(changed["cart"]) == {
        first["id"]: 5,
        second["id"]: 1,
    }
    assert removed["userErrors"] == [] and quantities(removed["cart"]) == {first["id"]: 5}
    assert Decimal(removed["cart"]["subtotal"]["amount"]) == first["price"] * 5
    rows = await shop.rows(
        "SELECT l.variant_id, l.quantity FROM cart_lines l JOIN carts c ON c.id = l.cart_id"
        " WHERE c.token = :token",
        token=token,
    )
    assert [tuple(row) for row in rows] == [(first["pk"], 5)]


async def test_an_empty_cart_has_a_zero_subtotal_in_the_shop_currency(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a cart whose only line was removed
    cart = await added(shop.anonymous, variants[0]["id"], 1)
    line = cart["lines"][0]["id"]
    await shop.anonymous.query(REMOVE, {"token": cart["token"], "line": line})

    # when it is read
    empty = (await shop.anonymous.query(CART, {"token": cart["token"]}))["cart"]

    # then it has no lines and costs nothing
    assert empty["lines"] == []
    assert Decimal(empty["subtotal"]["amount"]) == 0 and empty["subtotal"]["currency"] == "EUR"


async def test_a_line_beyond_the_stock_is_not_available(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a variant with 2 units in stock
    variant = variants[4]
    await shop.staff.query(SET_STOCK, {"id": variant["id"], "quantity": 2})
    try:
        # when a guest puts 2, then 3 of it in the cart
        two = await added(shop.anonymous, variant["id"], 2)
        three = await added(shop.anonymous, variant["id"], 1, two["token"])
    finally:
        await shop.staff.query(SET_STOCK, {"id": variant["id"], "quantity": 1000})

    # then the line is available with 2 and not with 3
    assert two["lines"][0]["available"] is True
    assert three["lines"][0]["available"] is False


async def test_a_customer_uses_their_own_cart_without_a_token(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer with no cart yet
    customer = await new_customer(shop)
    assert (await customer.query(CART))["cart"] is None
    assert (await customer.query(MY_CART))["me"]["cart"] is None

    # when they add twice without a token
    await added(customer, variants[0]["id"], 1)
    cart = await added(customer, variants[1]["id"], 2)

    # then both went to their one cart, which `cart` and `me.cart` show
    assert quantities(cart) == {variants[0]["id"]: 1, variants[1]["id"]: 2}
    assert (await customer.query(CART))["cart"] == cart
    assert (await customer.query(MY_CART))["me"]["cart"]["id"] == cart["id"]
    owner = customer.user_id  # type: ignore[attr-defined]
    assert await shop.value("SELECT count(*) FROM carts WHERE user_id = :u", u=owner) == 1

    # and nobody else sees it, by token or without
    other = await new_customer(shop)
    assert (await other.query(CART, {"token": cart["token"]}))["cart"] is None
    assert (await shop.anonymous.query(CART, {"token": cart["token"]}))["cart"] is None
    assert (await shop.anonymous.query(CART))["cart"] is None


async def registered(shop: Shop) -> tuple[str, GraphQLClient]:
    """A newly registered customer: their email and a client signed in as them."""
    email = f"merge-{uuid.uuid4().hex[:10]}@example.com"
    data = await shop.anonymous.query(
        REGISTER, {"input": {"email": email, "password": PASSWORD, "fullName": "Merle Merge"}}
    )
    assert data["register"]["userErrors"] == []
    token = data["register"]["accessToken"]
    return email, GraphQLClient(shop.http, {"Authorization": f"Bearer {token}"})


async def login(shop: Shop, email: str, cart_token: str | None) -> GraphQLClient:
    """Sign in (merging the guest cart `cart_token` names); a client signed in as the user."""
    data = await shop.anonymous.query(
        LOGIN, {"input": {"email": email, "password": PASSWORD, "cartToken": cart_token}}
    )
    assert data["login"]["userErrors"] == [], data
    return GraphQLClient(shop.http, {"Authorization": f"Bearer {data['login']['accessToken']}"})


async def test_signing_in_merges_the_guest_cart_summing_and_capping_quantities(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer's cart (A: 4, B: 1) and a guest cart (A: 3, C: 2)
    a, b, c = (variant["id"] for variant in variants[:3])
    email, customer = await registered(shop)
    await added(customer, a, 4)
    mine = await added(customer, b, 1)
    guest = await added(shop.anonymous, a, 3)
    guest = await added(shop.anonymous, c, 2, guest["token"])

    # when the guest signs in with the guest cart's token
    signed_in = await login(shop, email, guest["token"])

    # then the customer's cart holds both, A summed and capped at the line maximum
    cart = (await signed_in.query(CART))["cart"]
    assert cart["id"] == mine["id"]
    assert quantities(cart) == {a: MAX_QUANTITY, b: 1, c: 2}
    # and the guest cart is gone
    assert (await shop.anonymous.query(CART, {"token": guest["token"]}))["cart"] is None
    assert await shop.value("SELECT count(*) FROM carts WHERE token = :t", t=guest["token"]) == 0


async def test_signing_in_without_a_cart_adopts_the_guest_cart(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer without a cart and a guest cart
    email, _ = await registered(shop)
    guest = await added(shop.anonymous, variants[0]["id"], 2)

    # when the guest signs in with its token
    signed_in = await login(shop, email, guest["token"])

    # then the guest cart is now the customer's, and closed to guests
    cart = (await signed_in.query(CART))["cart"]
    assert cart["id"] == guest["id"] and quantities(cart) == {variants[0]["id"]: 2}
    assert (await shop.anonymous.query(CART, {"token": guest["token"]}))["cart"] is None


async def test_signing_in_with_a_token_of_no_guest_cart_merges_nothing(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer with a cart, and another customer's cart
    email, customer = await registered(shop)
    await added(customer, variants[0]["id"], 1)
    other = await new_customer(shop)
    theirs = await added(other, variants[1]["id"], 1)
    before = await shop.snapshot()

    # when they sign in with an unknown token, and with the other customer's cart token
    await login(shop, email, "no-such-cart-token")
    await login(shop, email, theirs["token"])

    # then sign-in worked (its sessions are all it wrote) and no cart changed
    assert changed_tables(before, await shop.snapshot()) == ["refresh_tokens"]


async def cart_with_line(shop: Shop, caller: GraphQLClient, variant: str) -> dict[str, Any]:
    """A cart of `caller` (a guest cart for anonymous) with one line of `variant`."""
    return await added(caller, variant, 1)


async def expect_refusal(
    shop: Shop,
    caller: GraphQLClient,
    query: str,
    variables: dict[str, Any],
    *,
    code: str,
    field: list[str],
) -> None:
    """The mutation answers one userError with this code and field, and no cart row changes."""
    before = await shop.snapshot()
    data = await caller.query(query, variables)
    [payload] = data.values()
    assert payload["cart"] is None, payload
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]
    assert await shop.snapshot() == before


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1, 2**31 - 1, -(2**31)])
async def test_a_bad_quantity_to_add_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]], quantity: int
) -> None:
    cart = await cart_with_line(shop, shop.anonymous, variants[0]["id"])
    for token in (cart["token"], None):
        await expect_refusal(
            shop,
            shop.anonymous,
            ADD,
            {"input": {"cartToken": token, "variantId": variants[1]["id"], "quantity": quantity}},
            code="INVALID",
            field=["input", "quantity"],
        )


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1, 2**31 - 1])
async def test_a_bad_quantity_to_set_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]], quantity: int
) -> None:
    cart = await cart_with_line(shop, shop.anonymous, variants[0]["id"])
    line = cart["lines"][0]["id"]
    await expect_refusal(
        shop,
        shop.anonymous,
        UPDATE,
        {"token": cart["token"], "line": line, "quantity": quantity},
        code="INVALID",
        field=["quantity"],
    )


async def test_adding_past_the_line_maximum_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    cart = await added(shop.anonymous, variants[0]["id"], MAX_QUANTITY - 1)
    await expect_refusal(
        shop,
        shop.anonymous,
        ADD,
        {"input": {"cartToken": cart["token"], "variantId": variants[0]["id"], "quantity": 2}},
        code="INVALID",
        field=["input", "quantity"],
    )


async def test_adding_past_the_line_limit_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    cart = await added(shop.anonymous, variants[0]["id"], 1)
    for variant in variants[1:MAX_LINES]:
        await added(shop.anonymous, variant["id"], 1, cart["token"])
    await expect_refusal(
        shop,
        shop.anonymous,
        ADD,
        {
            "input": {
                "cartToken": cart["token"],
                "variantId": variants[MAX_LINES]["id"],
                "quantity": 1,
            }
        },
        code="INVALID",
        field=["input", "variantId"],
    )


async def hidden_variant(shop: Shop) -> str:
    """A variant of a product that is not published (the shop's last product, unpublished)."""
    row = (
        await shop.rows(
            "SELECT v.id, v.product_id FROM product_variants v"
            " WHERE v.product_id = (SELECT max(id) FROM products) ORDER BY v.id LIMIT 1"
        )
    )[0]
    product = to_global_id("Product", row.product_id)
    data = await shop.staff.query(UPDATE_PRODUCT, {"id": product, "input": {"isPublished": False}})
    assert data["updateProduct"]["userErrors"] == []
    return to_global_id("ProductVariant", row.id)


async def test_a_line_of_a_product_no_longer_published_is_left_out(shop: Shop) -> None:
    # given a guest cart with a line of a published product
    row = (
        await shop.rows(
            "SELECT v.id, v.product_id FROM product_variants v JOIN products p"
            " ON p.id = v.product_id WHERE p.is_published ORDER BY p.id DESC, v.id LIMIT 1"
        )
    )[0]
    variant = to_global_id("ProductVariant", row.id)
    cart = await added(shop.anonymous, variant, 2)
    product = to_global_id("Product", row.product_id)

    # when the product is unpublished
    data = await shop.staff.query(UPDATE_PRODUCT, {"id": product, "input": {"isPublished": False}})
    assert data["updateProduct"]["userErrors"] == []
    try:
        hidden = (await shop.anonymous.query(CART, {"token": cart["token"]}))["cart"]
    finally:
        await shop.staff.query(UPDATE_PRODUCT, {"id": product, "input": {"isPublished": True}})

    # then the cart shows neither the line nor its price
    assert hidden["lines"] == [] and Decimal(hidden["subtotal"]["amount"]) == 0
    shown = (await shop.anonymous.query(CART, {"token": cart["token"]}))["cart"]
    assert quantities(shown) == {variant: 2}


@pytest.mark.parametrize("kind", ["unknown", "unpublished", "not-a-variant", "malformed"])
async def test_an_unknown_variant_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]], kind: str
) -> None:
    variant = {
        "unknown": to_global_id("ProductVariant", 987_654),
        "unpublished": await hidden_variant(shop) if kind == "unpublished" else "",
        "not-a-variant": to_global_id("Product", variants[0]["pk"]),
        "malformed": "not an id",
    }[kind]
    code = "NOT_FOUND" if kind in ("unknown", "unpublished") else "INVALID"
    cart = await cart_with_line(shop, shop.anonymous, variants[0]["id"])
    for token in (cart["token"], None):
        await expect_refusal(
            shop,
            shop.anonymous,
            ADD,
            {"input": {"cartToken": token, "variantId": variant, "quantity": 1}},
            code=code,
            field=["input", "variantId"],
        )


async def test_another_customers_cart_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer's cart and its token in the hands of a guest and of another customer
    owner = await new_customer(shop)
    cart = await cart_with_line(shop, owner, variants[0]["id"])
    line = cart["lines"][0]["id"]
    for stranger in (shop.anonymous, await new_customer(shop)):
        # then neither may add to it, change or remove its line
        await expect_refusal(
            shop,
            stranger,
            ADD,
            {"input": {"cartToken": cart["token"], "variantId": variants[1]["id"], "quantity": 1}},
            code="FORBIDDEN",
            field=["input", "cartToken"],
        )
        for query, variables in (
            (UPDATE, {"token": cart["token"], "line": line, "quantity": 2}),
            (REMOVE, {"token": cart["token"], "line": line}),
        ):
            await expect_refusal(
                shop, stranger, query, variables, code="FORBIDDEN", field=["cartToken"]
            )


async def test_a_line_of_another_cart_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given two guest carts and a customer's cart
    mine = await cart_with_line(shop, shop.anonymous, variants[0]["id"])
    theirs = await cart_with_line(shop, shop.anonymous, variants[1]["id"])
    customer = await new_customer(shop)
    await cart_with_line(shop, customer, variants[2]["id"])
    their_line = theirs["lines"][0]["id"]

    # then a line of the other cart cannot be changed or removed through mine, nor the customer's
    cases: list[tuple[GraphQLClient, dict[str, Any]]] = [
        (shop.anonymous, {"token": mine["token"], "line": their_line}),
        (customer, {"line": their_line}),
    ]
    for caller, variables in cases:
        await expect_refusal(
            shop, caller, UPDATE, {**variables, "quantity": 2}, code="NOT_FOUND", field=["lineId"]
        )
        await expect_refusal(shop, caller, REMOVE, variables, code="NOT_FOUND", field=["lineId"])


async def test_an_unknown_cart_token_is_refused_and_changes_nothing(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    line = (await cart_with_line(shop, shop.anonymous, variants[0]["id"]))["lines"][0]["id"]
    for token in ("no-such-cart", "x" * 500):
        await expect_refusal(
            shop,
            shop.anonymous,
            ADD,
            {"input": {"cartToken": token, "variantId": variants[0]["id"], "quantity": 1}},
            code="NOT_FOUND",
            field=["input", "cartToken"],
        )
        await expect_refusal(
            shop,
            shop.anonymous,
            REMOVE,
            {"token": token, "line": line},
            code="NOT_FOUND",
            field=["cartToken"],
        )
    # and a guest changing a line must say which cart
    await expect_refusal(
        shop, shop.anonymous, REMOVE, {"line": line}, code="REQUIRED", field=["cartToken"]
    )


async def test_the_response_cache_never_serves_a_cart(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given two guests with carts of their own
    first = await added(shop.anonymous, variants[0]["id"], 1)
    second = await added(shop.anonymous, variants[1]["id"], 2)

    # when each reads their cart, twice, and the first changes theirs between reads
    bodies = []
    for cart in (first, second, first, second):
        response = await shop.anonymous.post(CART, {"token": cart["token"]})
        bodies.append(response.json())
    await added(shop.anonymous, variants[0]["id"], 1, first["token"])
    after = (await shop.anonymous.post(CART, {"token": first["token"]})).json()

    # then each got their own cart, never a stored response, and the change shows at once
    assert [body["data"]["cart"]["id"] for body in bodies] == [first["id"], second["id"]] * 2
    assert [body["extensions"]["debug"]["cache"]["response"] for body in [*bodies, after]] == [
        None
    ] * 5
    assert quantities(after["data"]["cart"]) == {variants[0]["id"]: 2}
    # and over GET, a cart is marked for no shared cache
    got = await shop.http.get(
        "/graphql",
        params={"query": CART, "variables": f'{{"token": "{first["token"]}"}}'},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"


async def test_two_customers_asking_the_same_document_get_their_own_carts(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given two customers with carts of their own
    first, second = await new_customer(shop), await new_customer(shop)
    mine = await added(first, variants[0]["id"], 1)
    theirs = await added(second, variants[1]["id"], 2)

    # when both send the very same document (no token, no variables), in turn, twice
    bodies = [(await caller.post(CART)).json() for caller in (first, second, first, second)]

    # then each sees their own cart every time, none served from the response cache
    assert [body["data"]["cart"]["id"] for body in bodies] == [mine["id"], theirs["id"]] * 2
    assert {body["extensions"]["debug"]["cache"]["response"] for body in bodies} == {None}


async def test_each_mutation_of_a_document_answers_with_the_cart_after_it(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer
    customer = await new_customer(shop)
    variant = variants[0]["id"]

    # when one document adds to their cart twice
    data = await customer.query(
        f"""mutation ($v: ID!) {{
          first: addToCart(input: {{variantId: $v, quantity: 1}}) {{ cart {{ {CART_FIELDS} }} }}
          second: addToCart(input: {{variantId: $v, quantity: 2}}) {{ cart {{ {CART_FIELDS} }} }}
        }}""",
        {"v": variant},
    )

    # then each payload shows the cart as that mutation left it
    assert quantities(data["first"]["cart"]) == {variant: 1}
    assert quantities(data["second"]["cart"]) == {variant: 3}


async def test_concurrent_first_adds_of_a_customer_make_one_cart_within_the_limits(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a customer without a cart
    customer = await new_customer(shop)
    owner = customer.user_id  # type: ignore[attr-defined]

    # when they add one unit of one variant, 20 times at once
    payloads = await asyncio.gather(*(add(customer, variants[0]["id"], 1) for _ in range(20)))

    # then one cart holds MAX_QUANTITY units, and the adds past it were refused
    refused = [p["userErrors"][0]["code"] for p in payloads if p["userErrors"]]
    assert refused == ["INVALID"] * (20 - MAX_QUANTITY)
    rows = await shop.rows(
        "SELECT l.quantity FROM cart_lines l JOIN carts c ON c.id = l.cart_id WHERE c.user_id = :u",
        u=owner,
    )
    assert [row.quantity for row in rows] == [MAX_QUANTITY]


async def test_concurrent_adds_to_a_guest_cart_never_pass_the_line_limit(
    shop: Shop, variants: list[dict[str, Any]]
) -> None:
    # given a guest cart with one line
    cart = await added(shop.anonymous, variants[0]["id"], 1)

    # when four other variants are added at once
    payloads = await asyncio.gather(
        *(add(shop.anonymous, variant["id"], 1, cart["token"]) for variant in variants[1:5])
    )

    # then the cart holds MAX_LINES lines, and the rest were refused
    refused = [p for p in payloads if p["userErrors"]]
    assert len(refused) == 5 - MAX_LINES
    count = await shop.value(
        "SELECT count(*) FROM cart_lines l JOIN carts c ON c.id = l.cart_id WHERE c.token = :t",
        t=cart["token"],
    )
    assert count == MAX_LINES
