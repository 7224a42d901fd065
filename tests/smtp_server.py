"""An aiosmtpd server in the test's event loop that records what it accepted, and can refuse
(4xx) the first deliveries or hold one open (to kill its sender mid-job)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(eq=False)
class Inbox:
    """The mails the server accepted (250), and how it treats the next ones."""

    accepted: list[EmailMessage] = field(default_factory=list)
    refuse_next: int = 0  # answer this many deliveries 451 (a transient failure)
    refused: int = 0
    hold_next: bool = False  # keep the next delivery waiting at DATA until released
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hold_next:
            self.hold_next = False
            self.holding.set()
            await self.release.wait()
            return "451 held and dropped by the test"
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 try again later"
        content = envelope.content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        async with self.arrived:
            self.accepted.append(parsed)
            self.arrived.notify_all()
        return "250 OK"

    def with_id(self, message_id: str) -> list[EmailMessage]:
        """The accepted mails with this Message-ID."""
        return [mail for mail in self.accepted if mail["Message-ID"] == message_id]

    async def wait_for(self, message_id: str, *, within: float = 30.0) -> EmailMessage:
        """The first accepted mail with this Message-ID (waiting for it)."""
        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: bool(self.with_id(message_id)))
        return self.with_id(message_id)[0]


@dataclass(frozen=True)
class SmtpServer:
    """Where the server listens and what it got."""

    port: int
    inbox: Inbox

    @property
    def url(self) -> str:
        """SHOPGRAPH_SMTP_URL of it."""
        return f"smtp://127.0.0.1:{self.port}"


@asynccontextmanager
async def smtp_server() -> AsyncIterator[SmtpServer]:
    """An SMTP server on a free loopback port for the block."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox, hostname="smtp.test"), "127.0.0.1", 0)
    try:
        yield SmtpServer(server.sockets[0].getsockname()[1], inbox)
    finally:
        inbox.release.set()
        server.close()
        await server.wait_closed()
