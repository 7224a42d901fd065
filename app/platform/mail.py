"""Outgoing mail: SMTP (aiosmtplib) in production, `.eml` files in the outbox otherwise.

A `Mail` is built into an `email.message.EmailMessage` with a plain-text body and,
when given, an HTML alternative. Its Message-ID is passed in by the sender and must
be stable per cause (`message_id("order-confirmation", order_id, ...)`): a job that
is retried then sends the same mail, not a second different one. The outbox writer
keeps the first file of a Message-ID and skips later writes of it; over SMTP the
receiving side sees one Message-ID however often it arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app.settings import Settings

SMTP_PORT = 25
SMTPS_PORT = 465
_ID_PART = re.compile(r"[^A-Za-z0-9.-]+")


class MailError(Exception):
    """A mail could not be delivered; `transient` says whether trying again may work."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail to send: recipients, subject, bodies and its stable Message-ID."""

    message_id: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None


def message_id(*parts: object, domain: str) -> str:
    """A Message-ID stable in its parts, e.g. `<order-confirmation.42@shop.example>`."""
    local = ".".join(_ID_PART.sub("-", str(part)).strip("-") or "-" for part in parts)
    return f"<{local}@{domain}>"


def sender_domain(mail_from: str) -> str:
    """The domain of a From address (Message-IDs end with it)."""
    return parseaddr(mail_from)[1].rpartition("@")[2]


def build_message(mail: Mail, *, mail_from: str) -> EmailMessage:
    """The EmailMessage of a Mail: text/plain, with a text/html alternative when given."""
    if not mail.to:
        raise ValueError("a mail needs at least one recipient")
    if not (mail.message_id.startswith("<") and mail.message_id.endswith(">")):
        raise ValueError("a Message-ID is written <local@domain>")
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = mail.message_id
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


class MailSender(Protocol):
    """Delivers built messages (SMTP or outbox, chosen by settings)."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver one message; MailError if it cannot be."""
        ...


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    """How to reach the SMTP server, read from SMTP_URL (never shown: it holds a password)."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: upgrade when the server offers STARTTLS

    def __repr__(self) -> str:
        return f"SmtpOptions(hostname={self.hostname!r}, port={self.port}, use_tls={self.use_tls})"


def smtp_options(url: str, *, starttls: Literal["auto", "require", "off"] = "auto") -> SmtpOptions:
    """Connection options from smtp://user:pass@host:port (smtps:// for implicit TLS)."""
    parts = urlsplit(url)
    implicit_tls = parts.scheme == "smtps"
    return SmtpOptions(
        hostname=parts.hostname or "localhost",
        port=parts.port or (SMTPS_PORT if implicit_tls else SMTP_PORT),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=implicit_tls,
        # STARTTLS on top of implicit TLS is no option.
        start_tls=False
        if implicit_tls
        else {"auto": None, "require": True, "off": False}[starttls],
    )


class SmtpSender:
    """Sends over SMTP, one connection per message (mail is sent by jobs, not in bursts)."""

    def __init__(self, options: SmtpOptions, *, timeout: float) -> None:
        self._options = options
        self._timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        """Send one message; MailError (transient unless the server refused it for good)."""
        options = self._options
        try:
            await aiosmtplib.send(
                message,
                hostname=options.hostname,
                port=options.port,
                username=options.username,
                password=options.password,
                use_tls=options.use_tls,
                start_tls=options.start_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as error:
            # 5xx is a refusal (bad recipient, authentication); 4xx may pass later.
            raise MailError(
                f"the SMTP server answered {error.code}: {error.message}",
                transient=error.code < 500,
            ) from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            raise MailError(
                f"the SMTP server refused the recipients ({codes})",
                transient=all(code < 500 for code in codes),
            ) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise MailError(
                f"could not reach the SMTP server at {options.hostname}:{options.port}: "
                f"{type(error).__name__}: {error}",
                transient=True,
            ) from None


class OutboxSender:
    """Writes each message to `<directory>/<Message-ID>.eml` (the embedded mode's mail).

    The file appears whole or not at all (written to a temporary file in the same
    directory, then hard-linked into place), and a Message-ID that has a file already
    is skipped: a retried job does not write a second mail.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        """Write the message unless its Message-ID has a file already."""
        await asyncio.to_thread(self.write, message)

    def path_for(self, message_id: str) -> Path:
        """The file a Message-ID is written to."""
        readable = _ID_PART.sub("_", message_id.strip("<>"))[:80]
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:12]
        return self.directory / f"{readable}-{digest}.eml"

    def write(self, message: EmailMessage) -> bool:
        """Write the message (blocking); False if its Message-ID has a file already."""
        identifier = message["Message-ID"]
        if not identifier:
            raise ValueError("an outbox message needs a Message-ID")
        target = self.path_for(str(identifier))
        if target.exists():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(message.as_bytes(policy=SMTP_POLICY))
                file.flush()
                os.fsync(file.fileno())
            try:
                # link, not rename: it never replaces a file another writer put there first
                os.link(temporary, target)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(temporary)


def mail_sender(settings: Settings) -> MailSender:
    """SMTP when SMTP_URL is set, else the outbox directory."""
    if settings.smtp_url:
        options = smtp_options(settings.smtp_url, starttls=settings.smtp_starttls)
        return SmtpSender(options, timeout=settings.smtp_timeout_seconds)
    return OutboxSender(Path(settings.outbox_dir))
