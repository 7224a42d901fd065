"""Sign-in sessions: login, rotating refresh tokens, logout, password changes.

A session is a family of refresh tokens. Each refresh token is opaque, stored as
its SHA-256 digest and good for one use: using it spends it and issues the next
one of the same family. Presenting a spent token again means it was stolen (or
the client is confused): the whole family is revoked, and with it every access
token of that session (the Authenticator checks the family is live).

Failed sign-ins are counted in leaky buckets of the rate limiter (app.platform.throttles):
per (account, client IP) pair and per client IP, which refuse; and per account from
every IP, a higher ceiling that only slows (one attempt per `login_slow_lane_seconds`
past it) so that a stranger failing from elsewhere cannot lock the owner out. Every
attempt reserves its points before the password is checked and a successful one gives
them back, so concurrent attempts cannot slip past the limits.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models import Role
from app.models.base import utcnow
from app.platform.crypto import DataCipher
from app.platform.errors import InvalidCredentials
from app.platform.events import Change
from app.platform.passwords import InvalidEmail, normalize_email, password_hasher
from app.platform.ratelimit import RateLimiter
from app.platform.sealed_users import OpenedUser
from app.platform.throttles import Bucket, FailureThrottle
from app.platform.tokens import TokenService
from app.services import cart
from app.services.accounts import rules
from app.services.accounts.rules import refresh_tokens, users
from app.services.cart import CartLimits
from app.settings import Settings

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


def _account_digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


def login_account_bucket(email: str) -> str:
    """Rate-limiter key counting failed sign-ins of one account from every IP (email hashed)."""
    return f"login:account:{_account_digest(email)}"


def login_pair_bucket(email: str, client_ip: str) -> str:
    """Rate-limiter key counting failed sign-ins of one account from one client IP."""
    return f"login:pair:{_account_digest(email)}:{client_ip}"


def login_ip_bucket(client_ip: str) -> str:
    """Rate-limiter key counting failed sign-ins from one client IP."""
    return f"login:ip:{client_ip}"


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


async def login(
    db: Database,
    *,
    settings: Settings,
    rate_limiter: RateLimiter,
    email: str,
    password: str,
    client_ip: str,
    cart_token: str | None = None,
) -> SignedIn:
    """Check email and password and start a session, merging the guest cart `cart_token` names.

    Failures are throttled per account and IP. A token that names no guest cart merges nothing.
    """
    try:
        normalized: str | None = normalize_email(email)
    except InvalidEmail:
        normalized = None
    throttle = login_throttle(
        rate_limiter, settings, account=normalized or email.strip().lower(), client_ip=client_ip
    )
    await throttle.reserve()
    user = None
    if normalized is not None:
        async with db.read() as connection:
            user = (
                await connection.execute(
                    select(users).where(
                        users.c.email_hash
                        == DataCipher.from_settings(settings).search_hash(normalized)
                    )
                )
            ).first()
    hasher = password_hasher(settings.password_hash_concurrency)
    check = await hasher.verify(user.password_hash if user is not None else None, password)
    if user is None or not check.matches:
        raise InvalidCredentials(LOGIN_FAILED)  # the reserved points stay spent
    await throttle.release()
    new_hash = await hasher.hash(password) if check.needs_rehash else None
    async with db.unit_of_work() as work:
        connection = work.connection
        if new_hash is not None:
            await connection.execute(
                update(users).where(users.c.id == user.id).values(password_hash=new_hash)
            )
            work.record(Change("User", user.id))
        if cart_token is not None:
            await cart.merge_guest_cart(
                work, limits=CartLimits.of(settings), user_id=user.id, cart_token=cart_token
            )
        return await start_session(connection, settings, user)


async def refresh(db: Database, *, settings: Settings, refresh_token: str) -> SignedIn:
    """Spend a refresh token for new tokens; reusing a spent one revokes its whole session."""
    digest = _digest(refresh_token)
    now = utcnow()
    async with db.unit_of_work() as work:
        connection = work.connection
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
            return await start_session(connection, settings, user, family_id=claimed.family_id)
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
    async with db.unit_of_work() as work:
        connection = work.connection
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
    row = await rules.user(db, user_id)
    user = OpenedUser(DataCipher.from_settings(settings), row)
    rules.check_password(
        new_password,
        settings=settings,
        field="new_password",
        email=user.email,
        name=user.full_name,
    )
    # Guessing the current password with a stolen access token is throttled like sign-in.
    throttle = login_throttle(rate_limiter, settings, account=user.email, client_ip=client_ip)
    await throttle.reserve()
    hasher = password_hasher(settings.password_hash_concurrency)
    if not (await hasher.verify(user.password_hash, current_password)).matches:
        raise InvalidCredentials("The current password is incorrect", field="current_password")
    await throttle.release()
    new_hash = await hasher.hash(new_password)
    async with db.unit_of_work() as work:
        connection = work.connection
        await connection.execute(
            update(users).where(users.c.id == user_id).values(password_hash=new_hash)
        )
        work.record(Change("User", user_id))
        await _revoke(
            connection,
            refresh_tokens.c.user_id == user_id,
            refresh_tokens.c.family_id != (session_id or ""),
        )
    return row  # sealed, as every users row a service returns


def login_throttle(
    limiter: RateLimiter, settings: Settings, *, account: str, client_ip: str
) -> FailureThrottle:
    """The buckets of failed sign-ins: (account, IP) and IP refuse; the account ceiling slows."""
    window = settings.login_failure_window_seconds
    per_pair = settings.login_max_failures_per_account
    per_ip = settings.login_max_failures_per_ip
    total = settings.login_max_failures_per_account_total
    return FailureThrottle(
        limiter,
        [
            Bucket(login_pair_bucket(account, client_ip), per_pair, per_pair / window),
            Bucket(login_ip_bucket(client_ip), per_ip, per_ip / window),
        ],
        ceiling=Bucket(login_account_bucket(account), total, total / window),
        slow_lane=Bucket(
            f"login:slow:{_account_digest(account)}", 1, 1 / settings.login_slow_lane_seconds
        ),
        message="Too many failed sign-in attempts; try again in {seconds} seconds",
    )


async def start_session(
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
