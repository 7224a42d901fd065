"""A user's email and full name at rest: sealed, the email also as its keyed search hash.

`users.email` and `users.full_name` hold DataCipher values bound to their column
("users.email", "users.full_name"); `users.email_hash` is `search_hash` of the
lower-cased email and carries the uniqueness (sign-in and registration look it up).
"""

from __future__ import annotations

from typing import Any, Final

from app.platform.crypto import DataCipher

EMAIL_CONTEXT: Final = "users.email"
NAME_CONTEXT: Final = "users.full_name"
SEALED_USER_COLUMNS: Final = ("email", "full_name")


def seal_email(cipher: DataCipher, email: str) -> dict[str, str]:
    """The `email` (sealed) and `email_hash` column values of a normalised email."""
    return {
        "email": cipher.encrypt(email, context=EMAIL_CONTEXT),
        "email_hash": cipher.search_hash(email),
    }


def seal_name(cipher: DataCipher, full_name: str) -> str:
    """The `full_name` column value of a checked full name."""
    return cipher.encrypt(full_name, context=NAME_CONTEXT)


def seal_user(cipher: DataCipher, *, email: str, full_name: str) -> dict[str, str]:
    """The `email`, `email_hash` and `full_name` column values of a new user."""
    return {**seal_email(cipher, email), "full_name": seal_name(cipher, full_name)}


def open_email(cipher: DataCipher, value: str) -> str:
    """A `users.email` value in plaintext."""
    return cipher.decrypt(value, context=EMAIL_CONTEXT)


def open_name(cipher: DataCipher, value: str) -> str:
    """A `users.full_name` value in plaintext."""
    return cipher.decrypt(value, context=NAME_CONTEXT)


class OpenedUser:
    """A `users` row with its email and full name opened; other columns as the row has them."""

    __slots__ = ("_row", "email", "full_name")

    def __init__(self, cipher: DataCipher, row: Any) -> None:
        self._row = row
        self.email = open_email(cipher, row.email)
        self.full_name = open_name(cipher, row.full_name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)
