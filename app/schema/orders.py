"""Order types: orders, their lines and payments, connections, and the checkout input and payload.

An order is its customer's own: every type here is PRIVATE (maxAge 0), and the order
loaders name no cache tags, so no response with an order in it is ever stored or served
from cache. The shipping address is opened (decrypted) here, from the sealed columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import Row

from app.loaders.order_listing import OrderSortField
from app.loaders.orders import ORDER_SORT
from app.loaders.paging import Page, cursor_for
from app.models import OrderStatus, PaymentStatus
from app.platform.pagination import CursorSort, SortValue
from app.platform.sealed_addresses import SealedAddress, open_contact_email
from app.schema.accounts import Address, AddressInput, User
from app.schema.cache_hints import PRIVATE
from app.schema.catalog import ProductVariant
from app.schema.common import Money, SortDirection
from app.schema.enums import graphql_enum
from app.schema.errors import UserError
from app.schema.permissions import IsOwnerOrStaff
from app.schema.relations import each, optional, relation
from app.schema.relay import Node, PageInfo

graphql_enum(
    OrderStatus,
    name="OrderStatus",
    description="Where an order is on its way: PENDING_PAYMENT -> PAID -> FULFILLED -> "
    "SHIPPED -> DELIVERED; CANCELLED from PENDING_PAYMENT or PAID, REFUNDED from PAID or "
    "FULFILLED.",
    values={
        OrderStatus.PENDING_PAYMENT: "Placed; the payment is not complete yet.",
        OrderStatus.PAID: "Paid in full; waiting to be packed.",
        OrderStatus.FULFILLED: "Packed and ready to ship.",
        OrderStatus.SHIPPED: "Handed to the carrier.",
        OrderStatus.DELIVERED: "Arrived at the shipping address.",
        OrderStatus.CANCELLED: "Cancelled; the stock went back and a payment was refunded.",
        OrderStatus.REFUNDED: "The payment was given back; the units went back in stock.",
        OrderStatus.PAYMENT_FAILED: "The payment failed after the order was placed.",
    },
)
graphql_enum(
    OrderSortField,
    name="OrderSortField",
    description="What the order listing can be sorted by.",
    values={
        OrderSortField.CREATED_AT: "When the order was placed.",
        OrderSortField.TOTAL: "The order total.",
    },
)
graphql_enum(
    PaymentStatus,
    name="PaymentStatus",
    description="Where a payment is at its gateway.",
    values={
        PaymentStatus.PENDING: "Not sent to the gateway yet.",
        PaymentStatus.AUTHORIZED: "The amount is held on the payment method.",
        PaymentStatus.CAPTURED: "The amount was taken.",
        PaymentStatus.DECLINED: "The gateway refused the payment.",
        PaymentStatus.FAILED: "The gateway could not complete the payment.",
        PaymentStatus.REFUNDED: "The amount was given back.",
    },
)


@strawberry.type(
    description="One product variant of an order, as it was when the order was placed.",
    directives=[PRIVATE],
)
class OrderLine:
    """An order line (a price snapshot)."""

    variant_id: strawberry.Private[int | None]
    unit_price_minor: strawberry.Private[int]
    currency: strawberry.Private[str]
    sku: str = strawberry.field(description="The variant's SKU when the order was placed.")
    product_name: str = strawberry.field(description="The product's name when ordered.")
    variant_name: str = strawberry.field(description="The variant's name when ordered.")
    quantity: int = strawberry.field(description="Units ordered (at least 1).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> OrderLine:
        """Build from an `order_lines` row."""
        return cls(
            variant_id=row.variant_id,
            unit_price_minor=row.unit_price_minor,
            currency=row.currency,
            sku=row.sku,
            product_name=row.product_name,
            variant_name=row.variant_name,
            quantity=row.quantity,
        )

    @strawberry.field(description="The unit price when the order was placed.")
    def unit_price(self) -> Money:
        return Money.from_minor(self.unit_price_minor, self.currency)

    @strawberry.field(description="The unit price times the quantity.")
    def line_total(self) -> Money:
        return Money.from_minor(self.unit_price_minor * self.quantity, self.currency)

    variant: ProductVariant | None = relation(
        loader=lambda loaders: loaders.variant_by_id,
        key=lambda line: line.variant_id,
        build=optional(lambda row: ProductVariant.from_row(row)),
        description="The variant as it is now; null once it is deleted or no longer published.",
    )


@strawberry.type(description="A payment of an order at a payment gateway.", directives=[PRIVATE])
class Payment(Node):
    """A payment."""

    amount_minor: strawberry.Private[int]
    currency: strawberry.Private[str]
    gateway: str = strawberry.field(description='The gateway that took it ("test": the sandbox).')
    status: PaymentStatus = strawberry.field(description="Where the payment is at its gateway.")
    created_at: datetime = strawberry.field(description="When the payment was made (UTC).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> Payment:
        """Build from a `payments` row."""
        return cls(
            pk=row.id,
            amount_minor=row.amount_minor,
            currency=row.currency,
            gateway=row.gateway,
            status=PaymentStatus(row.status),
            created_at=row.created_at,
        )

    @strawberry.field(description="The amount paid.")
    def amount(self) -> Money:
        return Money.from_minor(self.amount_minor, self.currency)


@strawberry.type(
    description="An order: what a customer bought, at which prices, where it goes, how it was paid.",
    directives=[PRIVATE],
)
class Order(Node):
    """An order."""

    row: strawberry.Private[Row[Any]]
    user_id: strawberry.Private[int | None]
    number: str = strawberry.field(description="The order number to quote, e.g. SG-1A2B3C4D5E.")
    status: OrderStatus = strawberry.field(description="Where the order is on its way.")
    created_at: datetime = strawberry.field(description="When the order was placed (UTC).")
    updated_at: datetime = strawberry.field(description="When the status last changed (UTC).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> Order:
        """Build from an `orders` row."""
        return cls(
            pk=row.id,
            row=row,
            user_id=row.user_id,
            number=row.number,
            status=OrderStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="The sum of the line totals (prices when the order was placed).")
    def subtotal(self) -> Money:
        return Money.from_minor(self.row.subtotal_minor, self.row.currency)

    @strawberry.field(description="The shipping fee.")
    def shipping(self) -> Money:
        return Money.from_minor(self.row.shipping_minor, self.row.currency)

    @strawberry.field(description="Subtotal plus shipping: what was charged.")
    def total(self) -> Money:
        return Money.from_minor(self.row.total_minor, self.row.currency)

    @strawberry.field(
        description="Where the order goes: a copy made at checkout (stored encrypted). It is "
        "no entry of the address book: its `id` fetches nothing."
    )
    def shipping_address(self) -> Address:
        return Address(
            pk=0, user_id=self.user_id or 0, sealed=SealedAddress(self.row, table="orders")
        )

    @strawberry.field(
        description="The customer's email when the order was placed (stored encrypted); null "
        "for an order without one. Only the order's customer and staff may see it.",
        permission_classes=[IsOwnerOrStaff],
    )
    def contact_email(self, info: strawberry.Info) -> str | None:
        return open_contact_email(info.context.cipher, self.row)

    lines: list[OrderLine] = relation(
        loader=lambda loaders: loaders.order_lines_by_order_id,
        key=lambda order: order.pk,
        build=each(lambda row: OrderLine.from_row(row)),
        description="What was ordered, in the order of the cart's variants.",
    )
    payments: list[Payment] = relation(
        loader=lambda loaders: loaders.payments_by_order_id,
        key=lambda order: order.pk,
        build=each(lambda row: Payment.from_row(row)),
        description="The order's payments, oldest first.",
    )
    customer: User | None = relation(
        loader=lambda loaders: loaders.user_by_id,
        key=lambda order: order.user_id,
        build=optional(lambda row: User.from_row(row)),
        description="Who placed the order; null once their account is deleted.",
    )


@strawberry.type(description="An order in a connection.", directives=[PRIVATE])
class OrderEdge:
    """An edge to an order."""

    sort: strawberry.Private[CursorSort]
    sort_value: strawberry.Private[SortValue]
    node: Order = strawberry.field(description="The order.")

    @strawberry.field(description="Pass to `after`/`before` to page from here.")
    def cursor(self) -> str:
        return cursor_for(self.sort, self.sort_value, self.node.pk)


@strawberry.type(description="A page of orders.", directives=[PRIVATE])
class OrderConnection:
    """Orders, paged."""

    edges: list[OrderEdge] = strawberry.field(description="The orders of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    total_count: int = strawberry.field(description="How many orders there are in all.")

    @classmethod
    def from_page(
        cls,
        page: Page[Any],
        *,
        total_count: int,
        sort: CursorSort = ORDER_SORT,
        value_of: Callable[[Row[Any]], SortValue] = lambda row: row.created_at,
    ) -> OrderConnection:
        """Build from a page of `orders` rows sorted by `sort` (default: newest first)."""
        edges = [
            OrderEdge(sort=sort, sort_value=value_of(row), node=Order.from_row(row))
            for row in page.rows
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of(page, [edge.cursor() for edge in edges[:1] + edges[-1:]]),
            total_count=total_count,
        )


@strawberry.type(description="The result of checkout and of order changes.")
class OrderPayload:
    """The order after the change, or why nothing changed."""

    order: Order | None = strawberry.field(
        default=None, description="The order after the change; null when it failed."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why the change failed; empty on success."
    )


@strawberry.input(
    description="What checkout needs: the cart, where to ship (a new address, or one of the "
    "address book), the payment, and an idempotency key."
)
class CheckoutInput:
    """Checkout data."""

    cart_token: str | None = strawberry.field(
        default=None, description="The cart to buy. Omitted: the signed-in customer's own cart."
    )
    shipping_address: AddressInput | None = strawberry.field(
        default=None, description="Where to ship; give this or `addressId`."
    )
    address_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global ID of an address of your address book to ship to."
    )
    payment_token: str = strawberry.field(
        description="The payment method, as the gateway tokenized it. The test gateway takes "
        '"tok_success" (authorized, then captured), "tok_declined" (PAYMENT_DECLINED) and '
        '"tok_transient" (the first capture attempt fails; it is retried once).'
    )
    idempotency_key: str = strawberry.field(
        description="A key you make per checkout (1 to 100 characters, e.g. a UUID): sending "
        "the same checkout again with it returns the same order and charges once; the same "
        "key with another cart is IDEMPOTENCY_KEY_REUSED."
    )


@strawberry.input(description="Which orders the staff listing shows; every given field must match.")
class OrderFilter:
    """Order listing filter."""

    status: OrderStatus | None = strawberry.field(
        default=None, description="Orders in this status."
    )
    customer_email: str | None = strawberry.field(
        default=None,
        description="Orders placed with this customer email (any letter case; matched by a "
        "keyed hash, the email is stored encrypted).",
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Orders placed at or after this time."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Orders placed before this time."
    )


@strawberry.input(description="How the staff order listing is sorted (the id breaks ties).")
class OrderSort:
    """Order listing sort."""

    field: OrderSortField = strawberry.field(description="What to sort by.")
    direction: SortDirection = strawberry.field(
        default=SortDirection.DESC, description="Which way (newest or largest first by default)."
    )
