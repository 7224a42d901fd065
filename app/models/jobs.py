"""Background jobs: the transactional outbox, which is also each job's durable state.

A row is written in the same transaction as the change that causes the job (so a job
exists exactly when its cause committed), relayed to the broker after commit and
again periodically, claimed by the worker that runs it (`locked_until`), and marked
`completed_at` (or `failed_at` after its last attempt). `key` is unique: the same cause
enqueued twice is one job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class OutboxJob(Base):
    """One job: its name and JSON arguments, and where it is on its way."""

    __tablename__ = "job_outbox"
    __table_args__ = (
        # The relay's scan: jobs not yet done, by when they are due.
        Index("ix_job_outbox_pending", "completed_at", "failed_at", "available_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[str] = mapped_column(Text)  # JSON object
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
