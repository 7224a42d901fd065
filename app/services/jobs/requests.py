"""The jobs services ask for, by name, key and arguments (what enqueues them imports only this).

A key names the job's cause, so the same cause asked twice is one job (the outbox's
unique key): one capture per payment, one mail per order and kind, one low-stock alert
per variant and order, one clean-up per interval slot.
"""

from __future__ import annotations

from app.models import OrderStatus
from app.platform.jobs import JobRequest

CAPTURE_PAYMENT = "capture_payment"
ORDER_MAIL = "order_mail"
LOW_STOCK_ALERT = "low_stock_alert"
CLEAN_UP = "clean_up"

CONFIRMATION = "confirmation"  # the order mail sent once its payment is captured
ORDER_MAIL_KINDS = frozenset({CONFIRMATION, *(status.value for status in OrderStatus)})


def capture_job(payment_id: int) -> JobRequest:
    """Capture an authorized payment (its order becomes PAID)."""
    return JobRequest(CAPTURE_PAYMENT, f"capture:{payment_id}", {"payment_id": payment_id})


def order_mail_job(order_id: int, kind: str) -> JobRequest:
    """Mail an order's customer: the confirmation, or its new status (`SHIPPED`)."""
    if kind not in ORDER_MAIL_KINDS:
        raise ValueError(f"no order mail for {kind!r}")
    return JobRequest(
        ORDER_MAIL, f"order-mail:{order_id}:{kind}", {"order_id": order_id, "kind": kind}
    )


def crossed_threshold(*, stock_after: int, quantity: int, threshold: int) -> bool:
    """Whether taking `quantity` moved the stock from above `threshold` to at most it."""
    return stock_after <= threshold < stock_after + quantity


def low_stock_job(*, variant_id: int, sku: str, stock: int, order_id: int) -> JobRequest:
    """Alert staff that `sku` is down to `stock` units after order `order_id`."""
    return JobRequest(
        LOW_STOCK_ALERT,
        f"low-stock:{variant_id}:{order_id}",
        {"variant_id": variant_id, "sku": sku, "stock": stock, "order_id": order_id},
    )


def clean_up_job(slot: int) -> JobRequest:
    """The clean-up of one interval slot (one job per slot, however many processes ask)."""
    return JobRequest(CLEAN_UP, f"clean-up:{slot}", {"slot": slot})
