"""Orders: checkout (a cart becomes a paid order), and the order's way along its state machine.

Every change is one unit of work that records an `Order` change event (and `ProductVariant`
changes for stock, `Cart` for the emptied cart); expected failures (out of stock, declined
card, reused idempotency key, illegal transition, someone else's order) are DomainErrors
raised before anything is committed.
"""

from app.services.orders.checkout import CheckoutRequest, checkout
from app.services.orders.rules import TRANSITIONS
from app.services.orders.status import cancel_order, refund_order, update_order_status

__all__ = [
    "TRANSITIONS",
    "CheckoutRequest",
    "cancel_order",
    "checkout",
    "refund_order",
    "update_order_status",
]
