"""Orders: what a customer bought (price snapshots), where it goes, and how it was paid.

An order keeps copies of everything it was made from (SKU, names, unit prices, the
shipping address), so later catalog or address-book changes do not change it. The
shipping address columns hold values sealed by DataCipher (app/platform/crypto.py):
the database holds no plaintext address. `checkout_keys` is the idempotency record of
checkout: (customer, idempotency key) is unique, and the fingerprint of the cart the
key was first used with tells a retry from a reuse with another cart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.accounts import (
    SEALED_CITY,
    SEALED_EMAIL,
    SEALED_LINE,
    SEALED_NAME,
    SEALED_PHONE,
)
from app.models.base import Base, UTCDateTime, utcnow


class OrderStatus(StrEnum):
    """Where an order is on its way (app/services/orders/status.py has the transitions)."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    FULFILLED = "FULFILLED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    PAYMENT_FAILED = "PAYMENT_FAILED"


class PaymentStatus(StrEnum):
    """Where a payment is at its gateway."""

    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class Order(Base):
    """An order of a customer; address columns are sealed (`sg1.<key id>.<...>`)."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("subtotal_minor >= 0", name="subtotal_non_negative"),
        CheckConstraint("shipping_minor >= 0", name="shipping_non_negative"),
        Index("ix_orders_user_created", "user_id", "created_at", "id"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_email_hash", "email_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    # Kept when the account is deleted: the order stays, without its customer.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(Integer)
    shipping_minor: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(Integer)
    ship_full_name: Mapped[str] = mapped_column(String(SEALED_NAME))
    ship_line1: Mapped[str] = mapped_column(String(SEALED_LINE))
    ship_line2: Mapped[str | None] = mapped_column(String(SEALED_LINE))
    ship_city: Mapped[str] = mapped_column(String(SEALED_CITY))
    ship_postal_code: Mapped[str] = mapped_column(String(200))  # > SEALED_POSTAL_CODE
    ship_phone: Mapped[str | None] = mapped_column(String(SEALED_PHONE))
    ship_country: Mapped[str] = mapped_column(String(2))
    # The customer's email when the order was placed: sealed, and its keyed search hash
    # (crypto.search_hash) for staff search; null for orders placed before 0006 by a
    # customer whose account was gone by then.
    contact_email: Mapped[str | None] = mapped_column(String(SEALED_EMAIL))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderLine(Base):
    """One variant of an order, with the SKU, names and unit price it had then."""

    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # Kept when the variant is deleted: the snapshot still says what was bought.
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL")
    )
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    variant_name: Mapped[str] = mapped_column(String(200))
    unit_price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(Integer)


class Payment(Base):
    """A payment of an order at a gateway: its current status and amount."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    gateway: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    authorization_ref: Mapped[str | None] = mapped_column(String(120))
    capture_ref: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaymentEvent(Base):
    """One step of a payment's status history (what the gateway answered, and when)."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    gateway_ref: Mapped[str | None] = mapped_column(String(120))
    amount_minor: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CheckoutKey(Base):
    """The idempotency record of a checkout: one order per customer and key."""

    __tablename__ = "checkout_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_checkout_keys_user_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    cart_id: Mapped[int] = mapped_column(
        Integer
    )  # no foreign key: the cart may go, the record stays
    fingerprint: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
