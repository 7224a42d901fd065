"""Loaders for accounts: users by id, addresses by id and each user's address book."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select

from app.loaders.base import KEYS, BatchLoader, by_key, grouped_by_key, table_of
from app.models import Address, User

users = table_of(User)
addresses = table_of(Address)

OptionalRow = Row[Any] | None

# What a User type may show; the password hash never leaves the service layer.
USER_COLUMNS = (users.c.id, users.c.email, users.c.full_name, users.c.role, users.c.created_at)

# Built once, run with {"keys": [...]} (see KEYS).
USERS_BY_ID = select(*USER_COLUMNS).where(users.c.id.in_(KEYS))
ADDRESSES_BY_ID = select(addresses).where(addresses.c.id.in_(KEYS))
ADDRESSES_BY_USER_ID = (
    select(addresses)
    .where(addresses.c.user_id.in_(KEYS))
    .order_by(addresses.c.user_id, addresses.c.created_at, addresses.c.id)
)


class UserByIdLoader(BatchLoader[int, OptionalRow]):
    """User rows (without the password hash) by id."""

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(USERS_BY_ID, {"keys": keys})
        return by_key(rows, keys, "id")


class AddressByIdLoader(BatchLoader[int, OptionalRow]):
    """Address rows by id (ownership is the caller's to check)."""

    async def load_batch(self, keys: list[int]) -> list[OptionalRow]:
        rows = await self.fetch(ADDRESSES_BY_ID, {"keys": keys})
        return by_key(rows, keys, "id")


class AddressesByUserIdLoader(BatchLoader[int, list[Row[Any]]]):
    """Each user's address book, oldest first."""

    async def load_batch(self, keys: list[int]) -> list[list[Row[Any]]]:
        rows = await self.fetch(ADDRESSES_BY_USER_ID, {"keys": keys})
        return grouped_by_key(rows, keys, "user_id")
