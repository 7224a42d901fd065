"""Accounts: users, their roles, address books and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


def sealed_length(max_characters: int) -> int:
    """The column length that holds a sealed value of text up to `max_characters` long."""
    blob = 12 + 4 * max_characters + 16  # nonce + UTF-8 (at most 4 bytes a character) + tag
    return -(-blob // 3) * 4 + 48  # base64, and "sg1.<key id>." (key ids are short)


# Sealed column lengths for the service's limits (app/services/accounts/profile.py).
SEALED_NAME = sealed_length(200)
SEALED_LINE = sealed_length(200)
SEALED_CITY = sealed_length(100)
SEALED_POSTAL_CODE = sealed_length(20)
SEALED_PHONE = sealed_length(32)
SEALED_EMAIL = sealed_length(320)


class Role(StrEnum):
    """What a user may do: customers shop, staff run the shop, admins manage staff."""

    CUSTOMER = "CUSTOMER"
    STAFF = "STAFF"
    ADMIN = "ADMIN"


class User(Base):
    """A person with an account; email (lower-cased) and full name sealed (sealed_users.py).

    The email is unique by its keyed search hash `email_hash`, which sign-in looks up.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(SEALED_EMAIL))
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(SEALED_NAME))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", native_enum=False, create_constraint=True, length=16),
        default=Role.CUSTOMER,
        index=True,
    )
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Address(Base):
    """A postal address in a user's address book; personal fields sealed (`sg1.<key id>.<...>`).

    The sealed columns are sized for the longest value the service accepts (SEALED_* below):
    UTF-8 takes up to 4 bytes a character, base64 a third more, plus nonce, tag and prefix.
    """

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    full_name: Mapped[str] = mapped_column(String(SEALED_NAME))
    line1: Mapped[str] = mapped_column(String(SEALED_LINE))
    line2: Mapped[str | None] = mapped_column(String(SEALED_LINE))
    city: Mapped[str] = mapped_column(String(SEALED_CITY))
    postal_code: Mapped[str] = mapped_column(String(SEALED_POSTAL_CODE))
    phone: Mapped[str | None] = mapped_column(String(SEALED_PHONE))
    # Plain: it decides shipping and names no one.
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RefreshToken(Base):
    """One opaque, single-use refresh token (stored as a SHA-256 hash).

    Tokens that rotate from one login form a family (one session); reusing a spent
    token revokes the whole family.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
