"""Accounts: registration, sign-in sessions with rotating refresh tokens, profile and address book.

A session is a family of refresh tokens. Each refresh token is opaque, stored as
its SHA-256 digest and good for one use: using it spends it and issues the next
one of the same family. Presenting a spent token again means it was stolen (or
the client is confused): the whole family is revoked, and with it every access
token of that session (the Authenticator checks the family is live).

Failed sign-ins are counted per account and per client IP in leaky buckets of the
rate limiter; every attempt reserves a point before the password is checked and a
successful one gives it back, so concurrent attempts cannot slip past the limit.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.loaders.base import table_of
from app.models import Address, RefreshToken, Role, User
from app.models.base import utcnow
from app.platform.errors import (
    AlreadyExists,
    DomainError,
    ErrorKind,
    InvalidCredentials,
    NotFound,
    Throttled,
    WeakPassword,
)
from app.platform.passwords import (
    InvalidEmail,
    normalize_email,
    password_hasher,
    password_problem,
)
from app.platform.ratelimit import RateLimiter
from app.platform.tokens import TokenService
from app.settings import Settings

users = table_of(User)
addresses = table_of(Address)
refresh_tokens = table_of(RefreshToken)

NAME_MAX = 200
ADDRESS_LINE_MAX = 200
CITY_MAX = 100
POSTAL_CODE_MAX = 20
MAX_ADDRESSES = 50
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")

# One message for an unknown email and a wrong password: the answer must not tell them apart.
LOGIN_FAILED = "The email or password is incorrect"
REFRESH_FAILED = "The refresh token is invalid, expired or already used; sign in again"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A started or renewed session: the user and the tokens to send back."""

    user: Row[Any]
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class AddressFields:
    """The fields of an address as the caller gave them (checked by the service)."""

    full_name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None


def login_account_bucket(email: str) -> str:
    """Rate-limiter key counting failed sign-ins of one account (the email is hashed)."""
    return f"login:account:{hashlib.sha256(email.encode()).hexdigest()}"


def login_ip_bucket(client_ip: str) -> str:
    """Rate-limiter key counting failed sign-ins from one client IP."""
    return f"login:ip:{client_ip}"


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    text = value.strip()
    if required and not text:
        raise DomainError("Must not be empty", field=field, kind=ErrorKind.REQUIRED)
    if len(text) > max_length:
        raise DomainError(f"Must be at most {max_length} characters", field=field)
    return text


def _email(email: str, *, field: str) -> str:
    try:
        return normalize_email(email)
    except InvalidEmail as error:
        raise DomainError(str(error), field=field) from None


def _check_password(password: str, *, settings: Settings, field: str, **hints: str) -> None:
    problem = password_problem(
        password, min_length=settings.password_min_length, user_inputs=tuple(hints.values())
    )
    if problem is not None:
        raise WeakPassword(problem, field=field)


async def create_user(
    db: Database, *, settings: Settings, email: str, password: str, full_name: str, role: Role
) -> Row[Any]:
    """Add a user with a checked email and password; AlreadyExists when the email is taken."""
    email, full_name, password_hash = await _new_account(db, settings, email, password, full_name)
    try:
        async with db.engine.begin() as connection:
            return await _insert_user(connection, email, full_name, role, password_hash)
    except IntegrityError:
        raise _email_taken_error() from None  # registered concurrently


async def register(
    db: Database, *, settings: Settings, email: str, password: str, full_name: str
) -> SignedIn:
    """Create a customer account and sign it in."""
    email, full_name, password_hash = await _new_account(db, settings, email, password, full_name)
    try:
        async with db.engine.begin() as connection:
            user = await _insert_user(connection, email, full_name, Role.CUSTOMER, password_hash)
            return await _start_session(connection, settings, user)
    except IntegrityError:
        raise _email_taken_error() from None  # registered concurrently


async def login(
    db: Database,
    *,
    settings: Settings,
    rate_limiter: RateLimiter,
    email: str,
    password: str,
    client_ip: str,
) -> SignedIn:
    """Check email and password and start a session; failures are throttled per account and IP."""
    try:
        normalized: str | None = normalize_email(email)
    except InvalidEmail:
        normalized = None
    throttle = _LoginThrottle(
        rate_limiter, settings, account=normalized or email.strip().lower(), client_ip=client_ip
    )
    await throttle.reserve()
    user = None
    if normalized is not None:
        async with db.read() as connection:
            user = (
                await connection.execute(select(users).where(users.c.email == normalized))
            ).first()
    hasher = password_hasher(settings.password_hash_concurrency)
    check = await hasher.verify(user.password_hash if user is not None else None, password)
    if user is None or not check.matches:
        raise InvalidCredentials(LOGIN_FAILED)  # the reserved points stay spent
    await throttle.release()
    new_hash = await hasher.hash(password) if check.needs_rehash else None
    async with db.engine.begin() as connection:
        if new_hash is not None:
            await connection.execute(
                update(users).where(users.c.id == user.id).values(password_hash=new_hash)
            )
        return await _start_session(connection, settings, user)


async def refresh(db: Database, *, settings: Settings, refresh_token: str) -> SignedIn:
    """Spend a refresh token for new tokens; reusing a spent one revokes its whole session."""
    digest = _digest(refresh_token)
    now = utcnow()
    async with db.engine.begin() as connection:
        # Claiming the token is one conditional UPDATE: of two concurrent uses, one wins.
        claimed = (
            await connection.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == digest,
                    refresh_tokens.c.used_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                    refresh_tokens.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(refresh_tokens.c.user_id, refresh_tokens.c.family_id)
            )
        ).first()
        if claimed is not None:
            user = (
                await connection.execute(select(users).where(users.c.id == claimed.user_id))
            ).one()
            return await _start_session(connection, settings, user, family_id=claimed.family_id)
        spent_family = (
            await connection.execute(
                select(refresh_tokens.c.family_id).where(
                    refresh_tokens.c.token_hash == digest,
                    refresh_tokens.c.used_at.is_not(None),
                    refresh_tokens.c.revoked_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if spent_family is not None:
            await _revoke(connection, refresh_tokens.c.family_id == spent_family)
    # Raised after the commit: the family stays revoked.
    raise InvalidCredentials(REFRESH_FAILED, field="refresh_token")


async def logout(db: Database, *, refresh_token: str) -> bool:
    """End the session a refresh token belongs to; False when the token names no session."""
    async with db.engine.begin() as connection:
        family_id = (
            await connection.execute(
                select(refresh_tokens.c.family_id).where(
                    refresh_tokens.c.token_hash == _digest(refresh_token)
                )
            )
        ).scalar_one_or_none()
        if family_id is None:
            return False
        await _revoke(connection, refresh_tokens.c.family_id == family_id)
        return True


async def change_password(
    db: Database,
    *,
    settings: Settings,
    rate_limiter: RateLimiter,
    user_id: int,
    session_id: str | None,
    current_password: str,
    new_password: str,
    client_ip: str,
) -> Row[Any]:
    """Replace the password after checking the current one; every other session ends."""
    user = await _user(db, user_id)
    _check_password(
        new_password,
        settings=settings,
        field="new_password",
        email=user.email,
        name=user.full_name,
    )
    # Guessing the current password with a stolen access token is throttled like sign-in.
    throttle = _LoginThrottle(rate_limiter, settings, account=user.email, client_ip=client_ip)
    await throttle.reserve()
    hasher = password_hasher(settings.password_hash_concurrency)
    if not (await hasher.verify(user.password_hash, current_password)).matches:
        raise InvalidCredentials("The current password is incorrect", field="current_password")
    await throttle.release()
    new_hash = await hasher.hash(new_password)
    async with db.engine.begin() as connection:
        await connection.execute(
            update(users).where(users.c.id == user_id).values(password_hash=new_hash)
        )
        await _revoke(
            connection,
            refresh_tokens.c.user_id == user_id,
            refresh_tokens.c.family_id != (session_id or ""),
        )
    return user


async def update_profile(db: Database, *, user_id: int, full_name: str) -> Row[Any]:
    """Change the user's full name."""
    full_name = _text(full_name, field="full_name", max_length=NAME_MAX)
    async with db.engine.begin() as connection:
        row = (
            await connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(full_name=full_name)
                .returning(*users.c)
            )
        ).first()
    if row is None:
        raise NotFound("The account no longer exists")
    return row


async def add_address(db: Database, *, user_id: int, address: AddressFields) -> Row[Any]:
    """Add an address to the user's address book."""
    values = _address_values(address)
    async with db.engine.begin() as connection:
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
    db: Database, *, user_id: int, address_id: int, address: AddressFields
) -> Row[Any]:
    """Replace the fields of one of the user's addresses; NotFound for anyone else's."""
    values = _address_values(address)
    async with db.engine.begin() as connection:
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
    async with db.engine.begin() as connection:
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


class _LoginThrottle:
    """The per-account and per-IP buckets of failed sign-ins."""

    def __init__(
        self, limiter: RateLimiter, settings: Settings, *, account: str, client_ip: str
    ) -> None:
        window = settings.login_failure_window_seconds
        self.limiter = limiter
        self.buckets = [
            (
                login_account_bucket(account),
                settings.login_max_failures_per_account,
                settings.login_max_failures_per_account / window,
            ),
            (
                login_ip_bucket(client_ip),
                settings.login_max_failures_per_ip,
                settings.login_max_failures_per_ip / window,
            ),
        ]

    async def reserve(self) -> None:
        """Take one point from each bucket, or none and raise Throttled."""
        taken: list[tuple[str, int, float]] = []
        for key, capacity, restore_rate in self.buckets:
            state = await self.limiter.take(key, 1, capacity=capacity, restore_rate=restore_rate)
            if not state.allowed:
                for done in taken:
                    await self._give_back(*done)
                seconds = max(1, math.ceil(state.retry_after))
                raise Throttled(
                    f"Too many failed sign-in attempts; try again in {seconds} seconds",
                    retry_after=seconds,
                )
            taken.append((key, capacity, restore_rate))

    async def release(self) -> None:
        """Give the reserved points back (the attempt succeeded)."""
        for bucket in self.buckets:
            await self._give_back(*bucket)

    async def _give_back(self, key: str, capacity: int, restore_rate: float) -> None:
        await self.limiter.give_back(key, 1, capacity=capacity, restore_rate=restore_rate)


async def _new_account(
    db: Database, settings: Settings, email: str, password: str, full_name: str
) -> tuple[str, str, str]:
    """Check what a new account needs; the normalized email and name, and the password hash."""
    email = _email(email, field="email")
    full_name = _text(full_name, field="full_name", max_length=NAME_MAX)
    _check_password(password, settings=settings, field="password", email=email, name=full_name)
    if await _email_taken(db, email):
        raise _email_taken_error()
    password_hash = await password_hasher(settings.password_hash_concurrency).hash(password)
    return email, full_name, password_hash


async def _email_taken(db: Database, email: str) -> bool:
    async with db.read() as connection:
        found = await connection.execute(select(users.c.id).where(users.c.email == email))
        return found.first() is not None


def _email_taken_error() -> AlreadyExists:
    return AlreadyExists("An account with this email already exists", field="email")


def _address_not_found() -> NotFound:
    return NotFound("No such address in your address book", field="address_id")


async def _user(db: Database, user_id: int) -> Row[Any]:
    async with db.read() as connection:
        user = (await connection.execute(select(users).where(users.c.id == user_id))).first()
    if user is None:
        raise NotFound("The account no longer exists")
    return user


async def _insert_user(
    connection: AsyncConnection, email: str, full_name: str, role: Role, password_hash: str
) -> Row[Any]:
    return (
        await connection.execute(
            insert(users)
            .values(
                email=email,
                full_name=full_name,
                role=role,
                password_hash=password_hash,
                created_at=utcnow(),
            )
            .returning(*users.c)
        )
    ).one()


async def _start_session(
    connection: AsyncConnection, settings: Settings, user: Row[Any], *, family_id: str | None = None
) -> SignedIn:
    """Store a new refresh token (of a new family unless given) and sign an access token."""
    family_id = family_id or str(uuid.uuid4())
    refresh_token = secrets.token_urlsafe(32)
    now = utcnow()
    await connection.execute(
        insert(refresh_tokens).values(
            user_id=user.id,
            family_id=family_id,
            token_hash=_digest(refresh_token),
            created_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_ttl_days),
        )
    )
    access_token, expires_in = TokenService(settings).issue_user_token(
        user_id=user.id, role=Role(user.role).value, session_id=family_id
    )
    return SignedIn(
        user=user, access_token=access_token, refresh_token=refresh_token, expires_in=expires_in
    )


async def _revoke(connection: AsyncConnection, *conditions: Any) -> None:
    await connection.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.revoked_at.is_(None), *conditions)
        .values(revoked_at=utcnow())
    )


def _address_values(address: AddressFields) -> dict[str, Any]:
    country = address.country.strip().upper()
    if not COUNTRY_CODE.match(country):
        raise DomainError("Use the two-letter ISO 3166 country code, e.g. DE", field="country")
    line2 = _text(address.line2 or "", field="line2", max_length=ADDRESS_LINE_MAX, required=False)
    return {
        "full_name": _text(address.full_name, field="full_name", max_length=NAME_MAX),
        "line1": _text(address.line1, field="line1", max_length=ADDRESS_LINE_MAX),
        "line2": line2 or None,
        "city": _text(address.city, field="city", max_length=CITY_MAX),
        "postal_code": _text(address.postal_code, field="postal_code", max_length=POSTAL_CODE_MAX),
        "country": country,
    }
