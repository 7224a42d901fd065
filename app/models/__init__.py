"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.accounts import Address, RefreshToken, Role, User
from app.models.base import Base
from app.models.carts import Cart, CartLine
from app.models.catalog import Category, Product, ProductImage, ProductVariant, Review
from app.models.jobs import OutboxJob
from app.models.orders import (
    CheckoutKey,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
)
from app.models.partners import Partner, TrustedDocument

__all__ = [
    "Address",
    "Base",
    "Cart",
    "CartLine",
    "Category",
    "CheckoutKey",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OutboxJob",
    "Partner",
    "Payment",
    "PaymentEvent",
    "PaymentStatus",
    "Product",
    "ProductImage",
    "ProductVariant",
    "RefreshToken",
    "Review",
    "Role",
    "TrustedDocument",
    "User",
]
