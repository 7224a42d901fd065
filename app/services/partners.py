"""Partners: registering API clients and granting them access tokens (client credentials).

A partner's secret is shown once, at creation, and stored only as an Argon2id hash;
verifying it runs in a worker thread (app.platform.passwords), off the event loop.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.loaders.base import table_of
from app.models import Partner
from app.models.base import utcnow
from app.platform.errors import (
    AlreadyExists,
    DomainError,
    InvalidCredentials,
    NotFound,
    PermissionDenied,
)
from app.platform.events import Change
from app.platform.passwords import PasswordHasher
from app.platform.ratelimit import RateLimiter
from app.platform.scopes import known_list, unknown_scopes
from app.platform.throttles import Bucket, FailureThrottle
from app.platform.tokens import TokenService
from app.settings import Settings

partners = table_of(Partner)

NAME_MAX = 100
CLIENT_ID_PREFIX = "sgp_"
# A scope is an RFC 6749 section 3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ).
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


class InvalidClient(InvalidCredentials):
    """Unknown client id, wrong secret, or a revoked partner (never says which)."""


class ScopeNotAllowed(PermissionDenied):
    """The partner asked for a scope it does not hold."""


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a partner presents for a token: its id and secret, and the scopes it asks for."""

    client_id: str
    client_secret: str
    scopes: list[str] | None  # None: no scope asked for, the partner's full scope


@dataclass(frozen=True, slots=True)
class PartnerGrant:
    """An access token issued to a partner, and the scopes it carries."""

    access_token: str
    expires_in: int
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class PartnerCredentials:
    """What a new partner is told once: its client id and secret."""

    partner_id: int
    client_id: str
    client_secret: str


async def create_partner(
    db: Database,
    *,
    name: str,
    scopes: list[str],
    rate_tier: str,
    known_tiers: frozenset[str],
    hasher: PasswordHasher,
) -> PartnerCredentials:
    """Register a partner with fresh credentials; the secret is stored only as a hash."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise DomainError(f"The name must be 1 to {NAME_MAX} characters", field="name")
    for scope in scopes:
        if not SCOPE_TOKEN.fullmatch(scope):
            raise DomainError(f"{scope!r} is not a valid scope token", field="scope")
    unknown = unknown_scopes(scopes)
    if unknown:
        raise DomainError(f"unknown scope {unknown[0]!r}: use one of {known_list()}", field="scope")
    if rate_tier not in known_tiers:
        raise DomainError(
            f"unknown tier {rate_tier!r}: use one of {', '.join(sorted(known_tiers))}",
            field="tier",
        )
    client_id = CLIENT_ID_PREFIX + secrets.token_hex(12)
    client_secret = secrets.token_urlsafe(32)
    secret_hash = await hasher.hash(client_secret)
    try:
        async with db.unit_of_work() as work:
            connection = work.connection
            taken = await connection.execute(select(partners.c.id).where(partners.c.name == name))
            if taken.first() is not None:
                raise _name_taken(name)
            partner_id = (
                await connection.execute(
                    insert(partners)
                    .values(
                        name=name,
                        client_id=client_id,
                        secret_hash=secret_hash,
                        scopes=list(dict.fromkeys(scopes)),
                        rate_tier=rate_tier,
                        created_at=utcnow(),
                    )
                    .returning(partners.c.id)
                )
            ).scalar_one()
            work.record(Change("Partner", partner_id))
    except IntegrityError:
        raise _name_taken(name) from None
    return PartnerCredentials(partner_id, client_id, client_secret)


async def revoke_partner(db: Database, *, name: str) -> None:
    """Revoke a partner: its tokens stop working and it can get no new ones."""
    async with db.unit_of_work() as work:
        connection = work.connection
        revoked = await connection.execute(
            update(partners)
            .where(partners.c.name == name.strip(), partners.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(partners.c.id)
        )
        partner_id = revoked.scalar_one_or_none()
        if partner_id is None:
            raise NotFound(f"no active partner is named {name!r}", field="name")
        work.record(Change("Partner", partner_id))


async def grant_client_credentials(
    db: Database, request: ClientCredentials, *, tokens: TokenService, hasher: PasswordHasher
) -> PartnerGrant:
    """Check a partner's credentials and requested scope; sign an access token for it."""
    async with db.read() as connection:
        row = (
            await connection.execute(
                select(
                    partners.c.id,
                    partners.c.secret_hash,
                    partners.c.scopes,
                    partners.c.rate_tier,
                    partners.c.revoked_at,
                ).where(partners.c.client_id == request.client_id)
            )
        ).first()
    # An unknown client costs a hash verification too, so timing does not tell ids apart.
    check = await hasher.verify(row.secret_hash if row is not None else None, request.client_secret)
    if row is None or not check.matches or row.revoked_at is not None:
        raise InvalidClient("Unknown client, wrong secret, or revoked client")
    allowed = list(row.scopes)
    if request.scopes is None:
        granted = allowed
    else:
        beyond = [scope for scope in request.scopes if scope not in allowed]
        if beyond:
            raise ScopeNotAllowed(
                f"Scope not allowed for this client: {' '.join(beyond)}", field="scope"
            )
        granted = request.scopes
    # A partner stored before the list was closed may hold a name that means nothing now.
    unknown = unknown_scopes(granted)
    if unknown:
        raise ScopeNotAllowed(
            f"This client holds scopes this server does not know: {' '.join(unknown)}; "
            "ask for known ones with `scope`, or have the operator re-create the client",
            field="scope",
        )
    access_token, expires_in = tokens.issue_partner_token(
        partner_id=row.id, scopes=granted, rate_tier=row.rate_tier
    )
    return PartnerGrant(access_token=access_token, expires_in=expires_in, scopes=granted)


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"a partner named {name!r} already exists", field="name")


def oauth_throttle(
    limiter: RateLimiter, settings: Settings, client_id: str, client_ip: str
) -> FailureThrottle:
    """Failed token requests, counted before the secret is hashed.

    Per (client id, IP) pair and per IP, which refuse; per client id from every IP, a
    ceiling ten times the pair's that only slows (one try per `login_slow_lane_seconds`),
    so that a stranger who knows a client id cannot keep its partner from tokens.
    """
    window = settings.login_failure_window_seconds
    per_pair = settings.oauth_max_failures_per_client
    per_ip = settings.oauth_max_failures_per_ip
    # Hashed: a client id is whatever the caller sent, of any length.
    client = hashlib.sha256(client_id.encode("utf-8", "replace")).hexdigest()
    return FailureThrottle(
        limiter,
        [
            Bucket(f"oauth:pair:{client}:{client_ip}", per_pair, per_pair / window),
            Bucket(f"oauth:ip:{client_ip}", per_ip, per_ip / window),
        ],
        ceiling=Bucket(f"oauth:client:{client}", 10 * per_pair, 10 * per_pair / window),
        slow_lane=Bucket(f"oauth:slow:{client}", 1, 1 / settings.login_slow_lane_seconds),
        message="Too many failed token requests; try again in {seconds} seconds",
    )
