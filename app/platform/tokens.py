"""Signed, short-lived access tokens (JWT, HS256 pinned) with a key id for rotation.

Every key in settings verifies; only the active one signs. A token names what it
is for (`typ`): `access` for users, `partner` for partner applications.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from app.settings import Settings

ALGORITHM = "HS256"
ISSUER = "shopgraph"


class TokenError(Exception):
    """The token is malformed, forged, expired or of the wrong kind; the message says which."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified token says about its bearer."""

    kind: str  # "access" (a user) or "partner"
    subject: int
    role: str | None = None
    session_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    rate_tier: str | None = None
    expires_at: int = 0


class TokenService:
    """Issues and verifies access tokens with the keys from settings."""

    def __init__(self, settings: Settings) -> None:
        self._keys = settings.signing_keys
        self._active_kid = settings.active_kid
        self._user_ttl = settings.access_token_ttl_seconds
        self._partner_ttl = settings.partner_token_ttl_seconds

    def issue_user_token(self, *, user_id: int, role: str, session_id: str) -> tuple[str, int]:
        """A user's access token and its lifetime in seconds."""
        claims = {"typ": "access", "sub": str(user_id), "role": role, "sid": session_id}
        return self._sign(claims, self._user_ttl), self._user_ttl

    def issue_partner_token(
        self, *, partner_id: int, scopes: list[str], rate_tier: str
    ) -> tuple[str, int]:
        """A partner's access token and its lifetime in seconds."""
        claims = {
            "typ": "partner",
            "sub": str(partner_id),
            "scope": " ".join(scopes),
            "tier": rate_tier,
        }
        return self._sign(claims, self._partner_ttl), self._partner_ttl

    def _sign(self, claims: dict[str, Any], ttl: int) -> str:
        now = int(time.time())
        payload = {**claims, "iss": ISSUER, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        return jwt.encode(
            payload,
            self._keys[self._active_kid],
            algorithm=ALGORITHM,
            headers={"kid": self._active_kid},
        )

    def verify(self, token: str) -> AccessClaims:
        """Check signature, algorithm, issuer and expiry; raise TokenError otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenError("The access token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("The access token uses an algorithm this server does not accept")
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise TokenError("The access token was signed with an unknown or retired key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "typ", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("The access token has expired") from None
        except jwt.InvalidTokenError:
            raise TokenError("The access token is invalid") from None
        try:
            kind = str(payload["typ"])
            subject = int(payload["sub"])
        except (TypeError, ValueError):
            raise TokenError("The access token is invalid") from None
        if kind == "access":
            return AccessClaims(
                kind=kind,
                subject=subject,
                role=str(payload.get("role")),
                session_id=str(payload.get("sid")),
                expires_at=int(payload["exp"]),
            )
        if kind == "partner":
            return AccessClaims(
                kind=kind,
                subject=subject,
                scopes=frozenset(str(payload.get("scope", "")).split()),
                rate_tier=str(payload.get("tier") or "standard"),
                expires_at=int(payload["exp"]),
            )
        raise TokenError("The token is not an access token")
