"""Partners: API clients that authenticate with OAuth2 client credentials, and the trusted
documents a client may run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Partner(Base):
    """A partner application; its secret is stored only as an Argon2id hash."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_tier: Mapped[str] = mapped_column(String(32), default="standard")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TrustedDocument(Base):
    """A document registered for one client by `shopgraph documents add`, by its SHA-256.

    `client` is a partner's name (then `partner_id` is set, and only that partner may run
    it) or the name of a first-party app (`partner_id` is NULL: anonymous and signed-in
    callers may run it).
    """

    __tablename__ = "trusted_documents"
    __table_args__ = (
        UniqueConstraint("client", "sha256", name="uq_trusted_documents_client_sha256"),
        Index("ix_trusted_documents_sha256_partner_id", "sha256", "partner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(100))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))  # lower-case hex of the body's UTF-8
    name: Mapped[str | None] = mapped_column(String(200))  # the operation name of the manifest
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
