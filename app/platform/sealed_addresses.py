"""Shipping addresses at rest: which fields of an order's address copy are sealed, and how.

An order keeps a copy of its shipping address in `ship_*` columns. The personal fields
are sealed with DataCipher (AES-256-GCM, bound to their column as context), so the
database holds no plaintext address; the country stays plain (it decides shipping and
names no one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from app.platform.crypto import DataCipher

SEALED_FIELDS: Final = ("full_name", "line1", "line2", "city", "postal_code")


def _context(name: str) -> str:
    return f"orders.ship_{name}"


def seal_address(cipher: DataCipher, address: Mapping[str, Any]) -> dict[str, Any]:
    """The `ship_*` column values of a checked address, its personal fields sealed."""
    sealed: dict[str, Any] = {"ship_country": address["country"]}
    for name in SEALED_FIELDS:
        value = address.get(name)
        sealed[f"ship_{name}"] = (
            None if value is None else cipher.encrypt(value, context=_context(name))
        )
    return sealed


def open_address(cipher: DataCipher, row: Any) -> dict[str, Any]:
    """The shipping address of an `orders` row, opened: full_name, line1, ..., country."""
    opened: dict[str, Any] = {"country": row.ship_country}
    for name in SEALED_FIELDS:
        value = getattr(row, f"ship_{name}")
        opened[name] = None if value is None else cipher.decrypt(value, context=_context(name))
    return opened
