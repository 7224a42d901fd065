"""What a job body is given: its process's database, settings, mail sender and gateway, and
which attempt of the job this is."""

from __future__ import annotations

from dataclasses import dataclass

from app.db import Database
from app.platform.mail import MailSender
from app.services.payments.gateway import PaymentGateway
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class JobContext:
    """Built once per process that runs jobs (the server in-process, or `shopgraph worker`)."""

    db: Database
    settings: Settings
    mail: MailSender
    gateway: PaymentGateway


@dataclass(frozen=True, slots=True)
class JobRun:
    """One attempt at a job: which, and whether no retry follows a failure of it."""

    job_id: int
    attempt: int
    last: bool
