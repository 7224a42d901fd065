"""Checkout: a cart becomes an order with an authorized payment, in one transaction, once per key.

In one unit of work: the cart is locked (concurrent checkouts of one cart queue), a
known idempotency key answers with its order, the order and its idempotency record are
inserted (the unique (customer, key) decides between concurrent requests of two carts:
the loser waits for the winner's commit, fails, and answers with the winner's order),
stock is reserved line by line with one conditional UPDATE each (never read, then
written), the payment is authorized at the gateway, and the cart is emptied. Any refusal
(out of stock, declined card, bad address) raises before commit, so nothing is written:
no order, no payment, no stock held.

The order is PENDING_PAYMENT when checkout answers. The capture is a job (app/services/
jobs/capture.py) written to the outbox in the same transaction, with any low-stock alert:
they exist exactly when the order does, and run once the broker is reachable; the capture
makes the order PAID and asks for the confirmation mail (a `tok_transient` capture fails
its first attempt and is retried with backoff).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models import OrderStatus, PaymentStatus
from app.models.base import utcnow
from app.platform.crypto import DataCipher
from app.platform.errors import DomainError, ErrorKind, InvalidInput, NotFound
from app.platform.sealed_addresses import open_book_address, seal_address, seal_contact_email
from app.platform.sealed_users import open_email
from app.services.accounts import AddressFields, address_values
from app.services.cart.rules import cart_change, lock_cart_by_token, lock_customer_cart
from app.services.catalog.variants import variant_changes
from app.services.jobs.requests import capture_job, crossed_threshold, low_stock_job
from app.services.orders import rules
from app.services.orders.rules import (
    IdempotencyKeyReused,
    OutOfStock,
    PaymentDeclined,
    addresses,
    cart_lines,
    checkout_keys,
    order_lines,
    orders,
    payment_events,
    payments,
    products,
    users,
    variants,
)
from app.services.payments.gateway import (
    Declined,
    PaymentGateway,
    TransientGatewayError,
)
from app.services.payments.gateway import (
    IdempotencyKeyReused as GatewayKeyReused,
)

MAX_KEY_LENGTH = 100
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What the customer asks for: which cart, where to, how to pay, and the request's key."""

    idempotency_key: str
    payment_token: str
    cart_token: str | None = None
    shipping_address: AddressFields | None = None
    address_id: int | None = None


async def checkout(
    db: Database,
    *,
    gateway: PaymentGateway,
    cipher: DataCipher,
    user_id: int,
    request: CheckoutRequest,
    shipping_minor: int,
    low_stock_threshold: int | None = None,
) -> Row[Any]:
    """Turn the customer's cart into a paid order (or, for a known key, return its order)."""
    key = _checked_key(request)
    seen: dict[str, Any] = {}
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            cart = await _lock_cart(connection, user_id=user_id, cart_token=request.cart_token)
            lines = await _cart_lines(connection, cart.id)
            seen.update(cart_id=cart.id, fingerprint=_fingerprint(cart.id, lines), lines=lines)
            known = await _known_key(connection, user_id, key)
            if known is not None:
                return await _replay(connection, known, **seen)
            if not lines:
                raise InvalidInput("The cart is empty", field="cart_token")
            address = await _shipping_address(connection, cipher, user_id=user_id, request=request)
            order = await _insert_order(
                connection, cipher, user_id=user_id, lines=lines, address=address,
                shipping_minor=shipping_minor,
            )  # fmt: skip
            await connection.execute(
                insert(checkout_keys).values(
                    user_id=user_id, idempotency_key=key, cart_id=cart.id,
                    fingerprint=seen["fingerprint"], order_id=order.id, created_at=utcnow(),
                )
            )  # fmt: skip
            left = await _reserve_stock(connection, lines)
            await _insert_lines(connection, order.id, lines)
            payment_id = await _pay(
                connection, gateway, order, request.payment_token, user_id=user_id, key=key
            )
            await connection.execute(delete(cart_lines).where(cart_lines.c.cart_id == cart.id))
            work.record(rules.order_change(order.id), cart_change(cart.id))
            # Captured by a job after the commit (the order PAID then, and its confirmation sent).
            work.enqueue(capture_job(payment_id))
            if low_stock_threshold is not None:
                work.enqueue(
                    *(
                        low_stock_job(variant_id=line.variant_id, sku=line.sku,
                                      stock=left[line.variant_id], order_id=order.id)
                        for line in lines
                        if crossed_threshold(stock_after=left[line.variant_id],
                                             quantity=line.quantity, threshold=low_stock_threshold)
                    )
                )  # fmt: skip
            for line in lines:
                work.record(*variant_changes(line.variant_id, line.product_id))
            return await rules.order_row(connection, order.id)
    except IntegrityError:
        # Another request with this key committed first (the unique key decided): answer as
        # a retry would, with its order, or IDEMPOTENCY_KEY_REUSED if it was for another cart.
        if "fingerprint" not in seen:
            raise
        async with db.read() as connection:
            known = await _known_key(connection, user_id, key)
            if known is None:
                raise
            return await _replay(connection, known, **seen)


def _checked_key(request: CheckoutRequest) -> str:
    key = request.idempotency_key.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(
            f"The idempotency key must be 1 to {MAX_KEY_LENGTH} characters", field="idempotency_key"
        )
    if not 1 <= len(request.payment_token) <= MAX_TOKEN_LENGTH:
        raise InvalidInput("A payment token is required", field="payment_token")
    if (request.shipping_address is None) == (request.address_id is None):
        raise DomainError(
            "Give either shippingAddress or addressId",
            field="shipping_address",
            kind=ErrorKind.REQUIRED,
        )
    return key


async def _lock_cart(
    connection: AsyncConnection, *, user_id: int, cart_token: str | None
) -> Row[Any]:
    if cart_token is not None:
        return await lock_cart_by_token(connection, cart_token, user_id=user_id)
    cart = await lock_customer_cart(connection, user_id, create=False)
    if cart is None:
        raise InvalidInput("The cart is empty", field="cart_token")
    return cart


async def _cart_lines(connection: AsyncConnection, cart_id: int) -> Sequence[Row[Any]]:
    """The cart's lines with what the order copies, by variant id (the order rows are locked in)."""
    stmt: Select[Any] = (
        select(
            cart_lines.c.variant_id,
            cart_lines.c.quantity,
            variants.c.sku,
            variants.c.name.label("variant_name"),
            variants.c.price_minor,
            variants.c.currency,
            variants.c.product_id,
            products.c.name.label("product_name"),
            products.c.is_published,
        )
        .join(variants, variants.c.id == cart_lines.c.variant_id)
        .join(products, products.c.id == variants.c.product_id)
        .where(cart_lines.c.cart_id == cart_id)
        .order_by(cart_lines.c.variant_id)  # one lock order for every checkout: no deadlocks
    )
    rows: Sequence[Row[Any]] = (await connection.execute(stmt)).all()
    return rows


def _fingerprint(cart_id: int, lines: Sequence[Row[Any]]) -> str:
    """What a key was used for: the cart and its contents (variants, quantities)."""
    parts = [str(cart_id)] + [f"{line.variant_id}x{line.quantity}" for line in lines]
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()


async def _known_key(connection: AsyncConnection, user_id: int, key: str) -> Row[Any] | None:
    stmt = select(checkout_keys).where(
        checkout_keys.c.user_id == user_id, checkout_keys.c.idempotency_key == key
    )
    return (await connection.execute(stmt)).first()


async def _replay(
    connection: AsyncConnection,
    known: Row[Any],
    *,
    cart_id: int,
    fingerprint: str,
    lines: Sequence[Row[Any]],
) -> Row[Any]:
    """The order a known key made, if this request is that one again; else a reuse."""
    # The first checkout emptied the cart: a retry finds it empty (or, raced, unchanged).
    same = known.cart_id == cart_id and (known.fingerprint == fingerprint or not lines)
    if not same:
        raise IdempotencyKeyReused(
            "This idempotency key was used for another cart; use a new key for a new checkout",
            field="idempotency_key",
        )
    return await rules.order_row(connection, known.order_id)


async def _shipping_address(
    connection: AsyncConnection, cipher: DataCipher, *, user_id: int, request: CheckoutRequest
) -> dict[str, Any]:
    if request.shipping_address is not None:
        return address_values(request.shipping_address)
    row = (
        await connection.execute(
            select(addresses).where(
                addresses.c.id == request.address_id, addresses.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("You have no address with this ID", field="address_id")
    # Opened from the book's columns, sealed again below for the order's (contexts differ).
    return open_book_address(cipher, row)


async def _insert_order(
    connection: AsyncConnection,
    cipher: DataCipher,
    *,
    user_id: int,
    lines: Sequence[Row[Any]],
    address: dict[str, Any],
    shipping_minor: int,
) -> Row[Any]:
    """The order, PENDING_PAYMENT, with totals computed here from the current prices."""
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise InvalidInput("The cart mixes currencies", field="cart_token")
    subtotal = sum(line.price_minor * line.quantity for line in lines)
    email = open_email(
        cipher,
        (await connection.execute(select(users.c.email).where(users.c.id == user_id))).scalar_one(),
    )
    now = utcnow()
    result = await connection.execute(
        insert(orders)
        .values(
            number=f"SG-{secrets.token_hex(5).upper()}",
            status=OrderStatus.PENDING_PAYMENT.value,
            user_id=user_id,
            currency=currencies.pop(),
            subtotal_minor=subtotal,
            shipping_minor=shipping_minor,
            total_minor=subtotal + shipping_minor,
            created_at=now,
            updated_at=now,
            **seal_address(cipher, address),
            **seal_contact_email(cipher, email),
        )
        .returning(*orders.c)
    )
    return result.one()


async def _reserve_stock(connection: AsyncConnection, lines: Sequence[Row[Any]]) -> dict[int, int]:
    """Take every line's quantity off its variant's stock (the stock left, by variant id);
    OUT_OF_STOCK naming the SKUs that lack it."""
    short = [line.sku for line in lines if not line.is_published]
    left: dict[int, int] = {}
    for line in lines:
        if not line.is_published:
            continue
        # The condition is checked against the row as the lock leaves it: no read-then-write.
        taken = await connection.execute(
            update(variants)
            .where(variants.c.id == line.variant_id, variants.c.stock >= line.quantity)
            .values(stock=variants.c.stock - line.quantity)
            .returning(variants.c.stock)
        )
        stock = taken.scalar_one_or_none()
        if stock is None:
            short.append(line.sku)
        else:
            left[line.variant_id] = stock
    if short:
        raise OutOfStock(f"Not enough stock for: {', '.join(sorted(short))}", field="cart_token")
    return left


async def _insert_lines(
    connection: AsyncConnection, order_id: int, lines: Sequence[Row[Any]]
) -> None:
    await connection.execute(
        insert(order_lines),
        [
            {
                "order_id": order_id,
                "variant_id": line.variant_id,
                "sku": line.sku,
                "product_name": line.product_name,
                "variant_name": line.variant_name,
                "unit_price_minor": line.price_minor,
                "currency": line.currency,
                "quantity": line.quantity,
            }
            for line in lines
        ],
    )


async def _pay(
    connection: AsyncConnection,
    gateway: PaymentGateway,
    order: Row[Any],
    token: str,
    *,
    user_id: int,
    key: str,
) -> int:
    """Authorize the order's total; the payment (AUTHORIZED) and its first history step, by id."""
    # One gateway key per (customer, key, token): a retry after a decline may use another card.
    gateway_key = hashlib.sha256(f"{user_id}\x00{key}\x00{token}".encode()).hexdigest()
    amount, currency = order.total_minor, order.currency
    try:
        authorized = await gateway.authorize(
            amount=amount, currency=currency, token=token, idempotency_key=gateway_key
        )
    except TransientGatewayError:
        raise PaymentDeclined(
            "The payment could not be completed; try again", field="payment_token"
        ) from None
    except GatewayKeyReused:
        raise IdempotencyKeyReused(
            "This idempotency key was used for another payment", field="idempotency_key"
        ) from None
    if isinstance(authorized, Declined):
        raise PaymentDeclined(authorized.message, field="payment_token")
    now = utcnow()
    payment_id: int = (
        await connection.execute(
            insert(payments)
            .values(
                order_id=order.id, gateway=gateway.name, status=PaymentStatus.AUTHORIZED.value,
                amount_minor=amount, currency=currency,
                authorization_ref=authorized.authorization_id, capture_ref=None, created_at=now,
            )
            .returning(payments.c.id)
        )
    ).scalar_one()  # fmt: skip
    await connection.execute(
        insert(payment_events).values(
            payment_id=payment_id, status=PaymentStatus.AUTHORIZED.value,
            gateway_ref=authorized.authorization_id, amount_minor=amount, note=None,
            created_at=now,
        )
    )  # fmt: skip
    return payment_id


__all__ = ["CheckoutRequest", "checkout"]
