"""Who is calling: turns an Authorization header into a Viewer, or refuses it."""

from __future__ import annotations

from sqlalchemy import and_, exists, select

from app.context import ANONYMOUS, Viewer
from app.db import Database
from app.models import Partner, RefreshToken, Role, User
from app.platform.errors import Unauthenticated
from app.platform.tokens import TokenError, TokenService


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
            return await self._partner(claims.subject, claims.scopes)
        return await self._user(claims.subject, claims.session_id or "")

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
