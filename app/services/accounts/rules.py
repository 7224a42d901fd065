"""Shared rules of the account services: the tables, text, email and password checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select

from app.db import Database
from app.loaders.base import table_of
from app.models import Address, RefreshToken, User
from app.platform.errors import DomainError, ErrorKind, NotFound, WeakPassword
from app.platform.passwords import InvalidEmail, normalize_email, password_problem
from app.settings import Settings

users = table_of(User)
addresses = table_of(Address)
refresh_tokens = table_of(RefreshToken)
NAME_MAX = 200


def text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    """A trimmed text value within `max_length`; REQUIRED when empty and required."""
    trimmed = value.strip()
    if required and not trimmed:
        raise DomainError("Must not be empty", field=field, kind=ErrorKind.REQUIRED)
    if len(trimmed) > max_length:
        raise DomainError(f"Must be at most {max_length} characters", field=field)
    return trimmed


def email(email: str, *, field: str) -> str:
    """The normalized email address; INVALID when it is not one."""
    try:
        return normalize_email(email)
    except InvalidEmail as error:
        raise DomainError(str(error), field=field) from None


def check_password(password: str, *, settings: Settings, field: str, **hints: str) -> None:
    """Refuse a weak password (WeakPassword); `hints` are what the user typed elsewhere."""
    problem = password_problem(
        password, min_length=settings.password_min_length, user_inputs=tuple(hints.values())
    )
    if problem is not None:
        raise WeakPassword(problem, field=field)


async def user(db: Database, user_id: int) -> Row[Any]:
    """The user's row; NotFound when the account is gone."""
    async with db.read() as connection:
        user = (await connection.execute(select(users).where(users.c.id == user_id))).first()
    if user is None:
        raise NotFound("The account no longer exists")
    return user
