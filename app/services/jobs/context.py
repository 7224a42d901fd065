"""What a job body is given: the database, settings and the mail sender of its process."""

from __future__ import annotations

from dataclasses import dataclass

from app.db import Database
from app.platform.mail import MailSender
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class JobContext:
    """Built once per process that runs jobs (the server in-process, or `shopgraph worker`)."""

    db: Database
    settings: Settings
    mail: MailSender
