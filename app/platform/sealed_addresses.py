"""Personal fields at rest: which columns are sealed, under which context, and how.

The address book (`addresses`) and an order's copy of its shipping address (`orders.ship_*`)
seal their personal fields with DataCipher (AES-256-GCM); the country stays plain (it
decides shipping and names no one). An order also keeps the customer's email sealed in
`contact_email`, with its keyed search hash in `email_hash` for staff search. Every value
is bound to its column: the context is "<table>.<column>", so a value copied into another
column does not open. A user's email and full name are sealed too
(app/platform/sealed_users.py). `SEALED_COLUMNS` lists them all, for `shopgraph keys rotate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from app.platform.crypto import DataCipher

# The personal fields of an address, as services and types name them.
SEALED_FIELDS: Final = ("full_name", "line1", "line2", "city", "postal_code", "phone")
_ORDER_PREFIX: Final = "ship_"
CONTACT_EMAIL: Final = "contact_email"
# Every sealed column of the database, by table.
SEALED_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "addresses": SEALED_FIELDS,
    "orders": (*(f"{_ORDER_PREFIX}{name}" for name in SEALED_FIELDS), CONTACT_EMAIL),
    # app/platform/sealed_users.py; the email's search hash does not depend on the data key.
    "users": ("email", "full_name"),
}


def column_context(table: str, column: str) -> str:
    """The context a column's values are sealed for."""
    return f"{table}.{column}"


def _seal(
    cipher: DataCipher, address: Mapping[str, Any], table: str, prefix: str
) -> dict[str, Any]:
    sealed: dict[str, Any] = {f"{prefix}country": address["country"]}
    for name in SEALED_FIELDS:
        value = address.get(name)
        column = f"{prefix}{name}"
        sealed[column] = (
            None if value is None else cipher.encrypt(value, context=column_context(table, column))
        )
    return sealed


def _open(cipher: DataCipher, row: Any, table: str, prefix: str) -> dict[str, Any]:
    opened: dict[str, Any] = {"country": getattr(row, f"{prefix}country")}
    for name in SEALED_FIELDS:
        column = f"{prefix}{name}"
        value = getattr(row, column)
        opened[name] = (
            None if value is None else cipher.decrypt(value, context=column_context(table, column))
        )
    return opened


def seal_address(cipher: DataCipher, address: Mapping[str, Any]) -> dict[str, Any]:
    """The `orders.ship_*` column values of a checked address, its personal fields sealed."""
    return _seal(cipher, address, "orders", _ORDER_PREFIX)


def open_address(cipher: DataCipher, row: Any) -> dict[str, Any]:
    """The shipping address of an `orders` row, opened: full_name, line1, ..., country."""
    return _open(cipher, row, "orders", _ORDER_PREFIX)


def seal_book_address(cipher: DataCipher, address: Mapping[str, Any]) -> dict[str, Any]:
    """The `addresses` column values of a checked address, its personal fields sealed."""
    return _seal(cipher, address, "addresses", "")


def open_book_address(cipher: DataCipher, row: Any) -> dict[str, Any]:
    """An `addresses` row's address, opened: full_name, line1, ..., phone, country."""
    return _open(cipher, row, "addresses", "")


def seal_contact_email(cipher: DataCipher, email: str) -> dict[str, str]:
    """An order's `contact_email` (sealed) and `email_hash` (keyed, for search) values."""
    return {
        CONTACT_EMAIL: cipher.encrypt(email, context=column_context("orders", CONTACT_EMAIL)),
        "email_hash": cipher.search_hash(email),
    }


def open_contact_email(cipher: DataCipher, row: Any) -> str | None:
    """An `orders` row's contact email, opened; None when the order has none."""
    value = row.contact_email
    if value is None:
        return None
    return cipher.decrypt(value, context=column_context("orders", CONTACT_EMAIL))


class SealedAddress:
    """A row's sealed address, opened once on first use (types resolve fields from it)."""

    __slots__ = ("_opened", "_row", "_table")

    def __init__(self, row: Any, *, table: str) -> None:
        self._row = row
        self._table = table
        self._opened: dict[str, Any] | None = None

    def open(self, cipher: DataCipher) -> dict[str, Any]:
        """The address's fields in plaintext."""
        if self._opened is None:
            prefix = _ORDER_PREFIX if self._table == "orders" else ""
            self._opened = _open(cipher, self._row, self._table, prefix)
        return self._opened
