"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.accounts import Role, User
from app.models.base import Base
from app.models.catalog import Category, Product, ProductImage, ProductVariant, Review

__all__ = [
    "Base",
    "Category",
    "Product",
    "ProductImage",
    "ProductVariant",
    "Review",
    "Role",
    "User",
]
