"""The per-request context that resolvers see as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from app.db import Database
from app.loaders import Loaders
from app.models import Role
from app.platform.ratelimit import RateLimiter
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: a user (id, role, session), a partner (id, scopes, tier), or nobody."""

    user_id: int | None = None
    role: Role | None = None
    session_id: str | None = None
    partner_id: int | None = None
    scopes: frozenset[str] = frozenset()
    rate_tier: str | None = None

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


@dataclass
class Context:
    """Everything a resolver may use; built once per request (once per WebSocket connection)."""

    db: Database
    settings: Settings
    request_id: str
    rate_limiter: RateLimiter
    viewer: Viewer = field(default=ANONYMOUS)
    client_ip: str = "-"

    @cached_property
    def loaders(self) -> Loaders:
        """This request's loaders (made on first use)."""
        return Loaders(self.db, include_unpublished=self.viewer.is_staff)
