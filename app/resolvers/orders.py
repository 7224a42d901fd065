"""Root order fields: `order`, `orders`, and the mutations `checkout`, `cancelOrder`, `updateOrderStatus`, `refundOrder`.

Checkout is for signed-in customers: an order belongs to the customer who placed it (its
owner reads it and may cancel it), and the idempotency key is scoped to that customer. A
guest signs in (or registers) first; `login` merges their guest cart into their own.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import Row

from app.context import Context, Viewer
from app.loaders.order_listing import OrderFilterSpec, OrderSortSpec
from app.models import OrderStatus
from app.platform.crypto import DataCipher
from app.platform.global_ids import decode_id_of
from app.platform.scopes import Scope
from app.resolvers.mutations import Argument, global_id, mutation, payload_of
from app.schema.common import SortDirection
from app.schema.orders import (
    CheckoutInput,
    Order,
    OrderConnection,
    OrderFilter,
    OrderPayload,
    OrderSort,
)
from app.schema.permissions import SIGNED_IN, STAFF, CanListOrders
from app.schema.relay import After, Before, First, Last, Paging
from app.schema.scopes import NOT_FOR_PARTNERS, ORDERS
from app.services import accounts, orders

ORDER = payload_of(OrderPayload, "order", Order.from_row)
ORDER_ID = global_id("Order", "Global ID of the order.")
STATUS = Argument(OrderStatus, "The status to move the order to (one step of the state machine).")
# An address field at fault sits inside input.shippingAddress.
_CHECKOUT_PATHS = {
    name: ["input", "shippingAddress", camel]
    for name, camel in (
        ("full_name", "fullName"),
        ("line1", "line1"),
        ("line2", "line2"),
        ("city", "city"),
        ("postal_code", "postalCode"),
        ("country", "country"),
        ("phone", "phone"),
    )
}


def may_read(viewer: Viewer, row: Row[Any]) -> bool:
    """Whether a viewer may read an order: its customer, staff, partners holding orders:read."""
    if viewer.is_staff or Scope.ORDERS_READ in viewer.scopes:
        return True
    return viewer.user_id is not None and row.user_id == viewer.user_id


def _fresh(context: Context, row: Row[Any]) -> Row[Any]:
    # The payload reads the order after the change, not what this request loaded before it.
    for loader in (context.loaders.order_lines_by_order_id, context.loaders.payments_by_order_id):
        loader.clear(row.id)
    return row


@strawberry.type
class OrderQuery:
    """Order reads."""

    @strawberry.field(
        description="An order by its global ID: for its customer, staff, and partners with the "
        "scope orders:read; null when there is none or you may not see it.",
        metadata=ORDERS,
    )
    async def order(
        self,
        info: strawberry.Info[Context],
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the order.")],
    ) -> Order | None:
        row = await info.context.loaders.order_by_id.load(decode_id_of(id, "Order", field="id"))
        if row is None or not may_read(info.context.viewer, row):
            return None
        return Order.from_row(row)

    @strawberry.field(
        description="Every customer's orders, filtered and sorted (newest first by default). "
        "Staff, and partners with the scope orders:read.",
        permission_classes=[CanListOrders],
        metadata=ORDERS,
    )
    async def orders(
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            OrderFilter | None, strawberry.argument(description="Which orders to list.")
        ] = None,
        sort_by: Annotated[
            OrderSort | None, strawberry.argument(description="How to sort them.")
        ] = None,
    ) -> OrderConnection:
        spec, sort = _listing(info.context.cipher, filter, sort_by)
        page = Paging(first, after, last, before).request(sort.cursor_sort, info.context.settings)
        loaders = info.context.loaders
        result = await loaders.order_listing.load((spec, sort, page))
        total = await loaders.order_listing_count.load(spec)
        return OrderConnection.from_page(
            result, total_count=total, sort=sort.cursor_sort, value_of=sort.value_of
        )


def _listing(
    cipher: DataCipher, given: OrderFilter | None, sort_by: OrderSort | None
) -> tuple[OrderFilterSpec, OrderSortSpec]:
    spec = OrderFilterSpec()
    if given is not None:
        spec = OrderFilterSpec(
            status=None if given.status is None else given.status.value,
            customer_email_hash=None
            if given.customer_email is None
            else cipher.search_hash(given.customer_email),
            created_after=given.created_after,
            created_before=given.created_before,
        )
    sort = OrderSortSpec()
    if sort_by is not None:
        sort = OrderSortSpec(
            field=sort_by.field, descending=sort_by.direction is SortDirection.DESC
        )
    return spec, sort


@strawberry.type
class OrderMutation:
    """Checkout and order changes."""

    @mutation(
        ORDER,
        SIGNED_IN,
        input=Argument(CheckoutInput, "The cart, shipping address, payment and idempotency key."),
        scope=NOT_FOR_PARTNERS,
        paths=_CHECKOUT_PATHS,
    )
    async def checkout(context: Context, *, input: CheckoutInput) -> Row[Any]:
        """Buy the cart: stock is reserved for every line, the total (computed here from current prices plus SHIPPING_FEE_MINOR) is authorized, the cart is emptied; the order is PENDING_PAYMENT until a background job captures the payment (then PAID, and a confirmation is mailed). Signed-in customers only. The same idempotencyKey again returns the same order and charges once."""
        assert context.viewer.user_id is not None
        address = input.shipping_address
        request = orders.CheckoutRequest(
            idempotency_key=input.idempotency_key,
            payment_token=input.payment_token,
            cart_token=input.cart_token,
            shipping_address=None if address is None else accounts.AddressFields(
                full_name=address.full_name, line1=address.line1, line2=address.line2,
                city=address.city, postal_code=address.postal_code, country=address.country,
                phone=address.phone,
            ),
            address_id=None if input.address_id is None
            else decode_id_of(input.address_id, "Address", field="address_id"),
        )  # fmt: skip
        row = await orders.checkout(
            context.db,
            gateway=context.gateway,
            cipher=context.cipher,
            user_id=context.viewer.user_id,
            request=request,
            shipping_minor=context.settings.shipping_fee_minor,
            low_stock_threshold=context.settings.low_stock_threshold,
        )
        context.loaders.cart_lines_by_cart_id.clear_all()
        return _fresh(context, row)

    @mutation(ORDER, SIGNED_IN, order_id=ORDER_ID, scope=NOT_FOR_PARTNERS)
    async def cancel_order(context: Context, *, order_id: int) -> Row[Any]:
        """Cancel an order that is PENDING_PAYMENT or PAID (its customer, or staff): the stock goes back and a captured payment is refunded."""
        assert context.viewer.user_id is not None
        row = await orders.cancel_order(
            context.db,
            gateway=context.gateway,
            order_id=order_id,
            user_id=context.viewer.user_id,
            is_staff=context.viewer.is_staff,
        )
        return _fresh(context, row)

    @mutation(ORDER, STAFF, order_id=ORDER_ID, status=STATUS, scope=NOT_FOR_PARTNERS)
    async def update_order_status(
        context: Context, *, order_id: int, status: OrderStatus
    ) -> Row[Any]:
        """Move an order one step along its state machine (PAID -> FULFILLED -> SHIPPED -> DELIVERED; CANCELLED, REFUNDED). Staff only; an illegal step is ILLEGAL_TRANSITION."""
        row = await orders.update_order_status(
            context.db, gateway=context.gateway, order_id=order_id, status=status
        )
        return _fresh(context, row)

    @mutation(
        ORDER, STAFF, order_id=ORDER_ID, scope=NOT_FOR_PARTNERS, paths={"status": ["orderId"]}
    )
    async def refund_order(context: Context, *, order_id: int) -> Row[Any]:
        """Refund a PAID or FULFILLED order in full: its captured payment is given back at the gateway (once, however often this is retried), the order becomes REFUNDED and its units go back in stock (it has not shipped). Staff only; any other status is ILLEGAL_TRANSITION."""
        row = await orders.refund_order(context.db, gateway=context.gateway, order_id=order_id)
        return _fresh(context, row)
