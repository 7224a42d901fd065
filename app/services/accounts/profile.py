"""Accounts and what they hold: creating users and customers, the profile, the address book."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.db.work import UnitOfWork
from app.models import Role
from app.models.base import utcnow
from app.platform.crypto import DataCipher
from app.platform.errors import AlreadyExists, DomainError, NotFound
from app.platform.events import Change
from app.platform.passwords import password_hasher
from app.platform.ratelimit import RateLimiter
from app.platform.sealed_addresses import seal_book_address
from app.platform.sealed_users import seal_name, seal_user
from app.platform.throttles import Bucket, FailureThrottle
from app.services.accounts import rules
from app.services.accounts.rules import NAME_MAX, addresses, users
from app.services.accounts.sessions import SignedIn, start_session
from app.services.locking import lock_owner
from app.settings import Settings

ADDRESS_LINE_MAX = 200
CITY_MAX = 100
POSTAL_CODE_MAX = 20
PHONE_MAX = 32
# Digits with the separators people write; at least 3 digits (checked below).
PHONE = re.compile(r"^\+?[0-9 ()./-]+$")
MAX_ADDRESSES = 50
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class AddressFields:
    """The fields of an address as the caller gave them (checked by the service)."""

    full_name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    phone: str | None = None


async def create_user(
    db: Database, *, settings: Settings, email: str, password: str, full_name: str, role: Role
) -> Row[Any]:
    """Add a user with a checked email and password; AlreadyExists when the email is taken."""
    email, full_name, password_hash = await _new_account(db, settings, email, password, full_name)
    try:
        async with db.unit_of_work() as work:
            return await _insert_user(
                work, DataCipher.from_settings(settings), email, full_name, role, password_hash
            )
    except IntegrityError:
        raise _email_taken_error() from None  # registered concurrently


async def register(
    db: Database,
    *,
    settings: Settings,
    rate_limiter: RateLimiter,
    client_ip: str,
    email: str,
    password: str,
    full_name: str,
) -> SignedIn:
    """Create a customer account and sign it in; THROTTLED past the IP's registrations."""
    await registration_throttle(rate_limiter, settings, client_ip=client_ip).reserve()
    email, full_name, password_hash = await _new_account(db, settings, email, password, full_name)
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            user = await _insert_user(
                work,
                DataCipher.from_settings(settings),
                email,
                full_name,
                Role.CUSTOMER,
                password_hash,
            )
            return await start_session(connection, settings, user)
    except IntegrityError:
        raise _email_taken_error() from None  # registered concurrently


def registration_throttle(
    limiter: RateLimiter, settings: Settings, *, client_ip: str
) -> FailureThrottle:
    """Attempts to register from one IP, successful or not (never given back): one IP cannot
    make accounts (each with a budget of its own) or spend password hashes without end."""
    per_ip = settings.register_max_per_ip
    window = settings.register_window_seconds
    return FailureThrottle(
        limiter,
        [Bucket(f"register:ip:{client_ip}", per_ip, per_ip / window)],
        message="Too many accounts registered from this address; try again in {seconds} seconds",
    )


async def update_profile(
    db: Database, *, cipher: DataCipher, user_id: int, full_name: str
) -> Row[Any]:
    """Change the user's full name (sealed)."""
    full_name = rules.text(full_name, field="full_name", max_length=NAME_MAX)
    async with db.unit_of_work() as work:
        connection = work.connection
        row = (
            await connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(full_name=seal_name(cipher, full_name))
                .returning(*users.c)
            )
        ).first()
        work.record(Change("User", user_id))
    if row is None:
        raise NotFound("The account no longer exists")
    return row


async def add_address(
    db: Database, *, cipher: DataCipher, user_id: int, address: AddressFields
) -> Row[Any]:
    """Add an address to the user's address book (its personal fields sealed)."""
    values = seal_book_address(cipher, address_values(address))
    async with db.unit_of_work() as work:
        connection = work.connection
        # Serializes this owner's inserts, so the count below cannot go stale (issue 9).
        if await lock_owner(connection, users, user_id) is None:
            raise NotFound("The account no longer exists")
        count = (
            await connection.execute(
                select(func.count()).select_from(addresses).where(addresses.c.user_id == user_id)
            )
        ).scalar_one()
        if count >= MAX_ADDRESSES:
            raise DomainError(f"An address book holds at most {MAX_ADDRESSES} addresses")
        return (
            await connection.execute(
                insert(addresses)
                .values(user_id=user_id, created_at=utcnow(), **values)
                .returning(*addresses.c)
            )
        ).one()


async def update_address(
    db: Database, *, cipher: DataCipher, user_id: int, address_id: int, address: AddressFields
) -> Row[Any]:
    """Replace the fields of one of the user's addresses; NotFound for anyone else's."""
    values = seal_book_address(cipher, address_values(address))
    async with db.unit_of_work() as work:
        connection = work.connection
        row = (
            await connection.execute(
                update(addresses)
                .where(addresses.c.id == address_id, addresses.c.user_id == user_id)
                .values(**values)
                .returning(*addresses.c)
            )
        ).first()
    if row is None:
        raise _address_not_found()
    return row


async def remove_address(db: Database, *, user_id: int, address_id: int) -> Row[Any]:
    """Delete one of the user's addresses and return it as it was; NotFound for anyone else's."""
    async with db.unit_of_work() as work:
        connection = work.connection
        row = (
            await connection.execute(
                delete(addresses)
                .where(addresses.c.id == address_id, addresses.c.user_id == user_id)
                .returning(*addresses.c)
            )
        ).first()
    if row is None:
        raise _address_not_found()
    return row


async def _new_account(
    db: Database, settings: Settings, email: str, password: str, full_name: str
) -> tuple[str, str, str]:
    """Check what a new account needs; the normalized email and name, and the password hash."""
    email = rules.email(email, field="email")
    full_name = rules.text(full_name, field="full_name", max_length=NAME_MAX)
    rules.check_password(password, settings=settings, field="password", email=email, name=full_name)
    if await _email_taken(db, DataCipher.from_settings(settings), email):
        raise _email_taken_error()
    password_hash = await password_hasher(settings.password_hash_concurrency).hash(password)
    return email, full_name, password_hash


async def _email_taken(db: Database, cipher: DataCipher, email: str) -> bool:
    async with db.read() as connection:
        found = await connection.execute(
            select(users.c.id).where(users.c.email_hash == cipher.search_hash(email))
        )
        return found.first() is not None


def _email_taken_error() -> AlreadyExists:
    return AlreadyExists("An account with this email already exists", field="email")


def _address_not_found() -> NotFound:
    return NotFound("No such address in your address book", field="address_id")


async def _insert_user(
    work: UnitOfWork, cipher: DataCipher, email: str, full_name: str, role: Role, password_hash: str
) -> Row[Any]:
    row = (
        await work.connection.execute(
            insert(users)
            .values(
                **seal_user(cipher, email=email, full_name=full_name),
                role=role,
                password_hash=password_hash,
                created_at=utcnow(),
            )
            .returning(*users.c)
        )
    ).one()
    work.record(Change("User", row.id))
    return row


def address_values(address: AddressFields) -> dict[str, Any]:
    """The address's fields trimmed and checked (InvalidInput naming the field at fault)."""
    country = address.country.strip().upper()
    if not COUNTRY_CODE.match(country):
        raise DomainError("Use the two-letter ISO 3166 country code, e.g. DE", field="country")
    line2 = rules.text(
        address.line2 or "", field="line2", max_length=ADDRESS_LINE_MAX, required=False
    )
    return {
        "full_name": rules.text(address.full_name, field="full_name", max_length=NAME_MAX),
        "line1": rules.text(address.line1, field="line1", max_length=ADDRESS_LINE_MAX),
        "line2": line2 or None,
        "city": rules.text(address.city, field="city", max_length=CITY_MAX),
        "postal_code": rules.text(
            address.postal_code, field="postal_code", max_length=POSTAL_CODE_MAX
        ),
        "phone": _phone(address.phone),
        "country": country,
    }


def _phone(phone: str | None) -> str | None:
    """A trimmed phone number, or None; INVALID unless it looks like one."""
    trimmed = rules.text(phone or "", field="phone", max_length=PHONE_MAX, required=False)
    if not trimmed:
        return None
    if not PHONE.match(trimmed) or sum(c.isdigit() for c in trimmed) < 3:
        raise DomainError(
            "Use digits, spaces and + - ( ) / . for a phone number, e.g. +49 30 1234567",
            field="phone",
        )
    return trimmed
