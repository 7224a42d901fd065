"""Who is calling: the Viewer, and the Authenticator that turns an Authorization header into one."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import and_, exists, select

from app.db import Database
from app.models import Partner, RefreshToken, Role, User
from app.platform.errors import Unauthenticated
from app.platform.tokens import TokenError, TokenService


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: a user (id, role, session), a partner (id, scopes, tier), or nobody."""

    user_id: int | None = None
    role: Role | None = None
    session_id: str | None = None
    partner_id: int | None = None
    scopes: frozenset[str] = frozenset()
    rate_tier: str | None = None
    expires_at: int | None = None  # when the access token it came with expires (epoch s)

    @property
    def sharing_key(self) -> tuple[object, ...]:
        """What decides what this viewer may see: equal for viewers who see the same."""
        return (self.user_id, self.role, self.partner_id, self.scopes)

    @property
    def is_authenticated(self) -> bool:
        """Whether a user is signed in."""
        return self.user_id is not None

    @property
    def is_staff(self) -> bool:
        """Whether the viewer may manage the shop."""
        return self.role in (Role.STAFF, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        """Whether the viewer may manage staff."""
        return self.role is Role.ADMIN

    @property
    def is_partner(self) -> bool:
        """Whether the caller is a partner application."""
        return self.partner_id is not None


ANONYMOUS = Viewer()


class Authenticator:
    """Verifies bearer tokens and checks that their session or partner is still live."""

    def __init__(self, db: Database, tokens: TokenService) -> None:
        self.db = db
        self.tokens = tokens

    async def viewer_for(self, authorization: str | None) -> Viewer:
        """The viewer an `Authorization` header names (anonymous when there is none)."""
        if authorization is None:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Send the access token as `Authorization: Bearer <token>`")
        try:
            claims = self.tokens.verify(token.strip())
        except TokenError as error:
            raise Unauthenticated(str(error)) from None
        if claims.kind == "partner":
            viewer = await self._partner(claims.subject, claims.scopes)
        else:
            viewer = await self._user(claims.subject, claims.session_id or "")
        return replace(viewer, expires_at=claims.expires_at)

    async def _user(self, user_id: int, session_id: str) -> Viewer:
        # One indexed read: the user's current role, if the session (refresh family) is live.
        live_session = exists().where(
            and_(
                RefreshToken.family_id == session_id,
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
            )
        )
        async with self.db.read() as connection:
            role = (
                await connection.execute(select(User.role).where(User.id == user_id, live_session))
            ).scalar_one_or_none()
        if role is None:
            raise Unauthenticated("The session of this access token has ended; sign in again")
        return Viewer(user_id=user_id, role=Role(role), session_id=session_id)

    async def _partner(self, partner_id: int, granted: frozenset[str]) -> Viewer:
        async with self.db.read() as connection:
            row = (
                await connection.execute(
                    select(Partner.scopes, Partner.rate_tier).where(
                        Partner.id == partner_id, Partner.revoked_at.is_(None)
                    )
                )
            ).first()
        if row is None:
            raise Unauthenticated("This partner's access has been revoked")
        # The token's scopes, narrowed to what the partner still holds: a token issued for
        # fewer scopes never regains the rest, and a scope taken away since stops at once.
        return Viewer(
            partner_id=partner_id, scopes=granted & frozenset(row.scopes), rate_tier=row.rate_tier
        )
