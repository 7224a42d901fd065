"""Loaders for carts: by token, by owner, and each cart's lines with their variants' prices.

Carts are the viewer's own data: none of these loaders reads or fills the entity cache,
and none can name cache tags, so a response that reads a cart is never cached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select, true

from app.loaders.base import KEYS, BatchLoader, by_key, grouped_by_key, table_of
from app.models import Cart, CartLine, Product, ProductVariant

carts = table_of(Cart)
cart_lines = table_of(CartLine)
variants = table_of(ProductVariant)
products = table_of(Product)

OptionalRow = Row[Any] | None

# Built once, run with {"keys": [...]} (see KEYS).
CARTS_BY_TOKEN = select(carts).where(carts.c.token.in_(KEYS))
CARTS_BY_USER_ID = select(carts).where(carts.c.user_id.in_(KEYS))
# A line of a product that is not published (now) is not shown, nor counted in the subtotal.
CART_LINES_BY_CART_ID = (
    select(
        cart_lines,
        variants.c.price_minor.label("unit_price_minor"),
        variants.c.currency,
        variants.c.stock,
    )
    .join(variants, variants.c.id == cart_lines.c.variant_id)
    .join(products, products.c.id == variants.c.product_id)
    .where(cart_lines.c.cart_id.in_(KEYS), products.c.is_published == true())
    .order_by(cart_lines.c.cart_id, cart_lines.c.id)
)


class CartByTokenLoader(BatchLoader[str, OptionalRow]):
    """Cart rows by token (who may see one is the caller's to check)."""

    async def load_batch(self, keys: list[str]) -> list[OptionalRow]:
        rows = await self.fetch(CARTS_BY_TOKEN, {"keys": keys})
        return by_key(rows, keys, "token")


class CartByUserIdLoader(BatchLoader[int, OptionalRow]):
    """Each customer's cart (None: no cart yet)."""

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(CARTS_BY_USER_ID, {"keys": keys})
        return by_key(rows, keys, "user_id")


class CartLinesByCartIdLoader(BatchLoader[int, list[Row[Any]]]):
    """Each cart's visible lines, oldest first, with unit price, currency and stock."""

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(CART_LINES_BY_CART_ID, {"keys": keys})
        return grouped_by_key(rows, keys, "cart_id")
