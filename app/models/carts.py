"""Carts: a guest's or a customer's cart and its lines (one per variant).

A cart is found by its opaque token (random, unguessable; guests keep it) or, for a
signed-in customer, by its owner: a customer has at most one cart (`user_id` unique).
`updated_at` moves with every change, for the clean-up of abandoned carts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Cart(Base):
    """A shopping cart: a guest's (no owner) or a customer's (one per customer)."""

    __tablename__ = "carts"
    __table_args__ = (Index("ix_carts_updated_at", "updated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CartLine(Base):
    """A quantity of one variant in a cart."""

    __tablename__ = "cart_lines"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        UniqueConstraint("cart_id", "variant_id", name="uq_cart_lines_cart_variant"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
