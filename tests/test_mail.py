"""Mail: a real SMTP server (aiosmtpd on a free port) receives both bodies with the right
headers; without SMTP the outbox gets one parseable .eml per Message-ID."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.platform.mail import (
    Mail,
    MailError,
    OutboxSender,
    SmtpOptions,
    SmtpSender,
    build_message,
    mail_sender,
    message_id,
    sender_domain,
    smtp_options,
)
from app.settings import SettingsError, load_settings

MAIL_FROM = "Shop <no-reply@shop.example>"
USER, PASSWORD = "shop", "s3cret:/@"  # characters a URL must escape


def _order_mail(order_id: int = 42) -> Mail:
    return Mail(
        message_id=message_id("order-confirmation", order_id, domain="shop.example"),
        to=("jane@example.com",),
        subject=f"Your order SG-{order_id}",
        text="2 x Mug  19.98 EUR\nTotal: 19.98 EUR\n",
        html="<table><tr><td>2 x Mug</td><td>19.98 EUR</td></tr></table><p>Total: 19.98 EUR</p>",
    )


@dataclass
class Received:
    """What the SMTP server was given."""

    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def message(self, index: int = 0) -> EmailMessage:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 and a free port, in the test's event loop."""

    port: int
    received: Received


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    received = Received()

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            received.logins.append((data.login, data.password))
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 / 535

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            received,
            hostname="smtp.test",
            authenticator=authenticate,
            auth_require_tls=False,  # loopback only; TLS is the server's business
        ),
        "127.0.0.1",
        0,
    )
    try:
        yield SmtpServer(server.sockets[0].getsockname()[1], received)
    finally:
        server.close()
        await server.wait_closed()


def _lines(text: str) -> str:
    """Text as written, before SMTP's CRLF line ends."""
    return text.replace("\r\n", "\n")


def _suffixes(directory: Path) -> list[str]:
    return sorted(path.suffix for path in directory.iterdir())


def _url(port: int) -> str:
    return f"smtp://{USER}:s3cret%3A%2F%40@127.0.0.1:{port}"


async def test_a_mail_arrives_with_both_bodies_and_its_headers(smtp_server: SmtpServer) -> None:
    # given a sender for the server's URL, as settings build it
    sender = mail_sender(load_settings(smtp_url=_url(smtp_server.port), mail_from=MAIL_FROM))
    mail = _order_mail()

    # when a mail is sent
    await sender.send(build_message(mail, mail_from=MAIL_FROM))

    # then the server got it from and to the right addresses, signed in as the URL says
    assert smtp_server.received.logins == [(USER.encode(), PASSWORD.encode())]
    [envelope] = smtp_server.received.envelopes
    assert envelope.mail_from == "no-reply@shop.example"
    assert envelope.rcpt_tos == ["jane@example.com"]
    # with its headers
    message = smtp_server.received.message()
    assert message["Message-ID"] == "<order-confirmation.42@shop.example>"
    assert message["Subject"] == "Your order SG-42"
    assert message["From"] == MAIL_FROM
    assert message["To"] == "jane@example.com"
    assert message["Date"]
    # and both bodies, as alternatives
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert _lines(text.get_content()) == mail.text
    assert html.get_content().strip() == mail.html


async def test_a_plain_text_mail_has_one_body(smtp_server: SmtpServer) -> None:
    mail = Mail(message_id="<a.1@shop.example>", to=("a@example.com",), subject="Hi", text="Hë")
    sender = SmtpSender(smtp_options(_url(smtp_server.port)), timeout=5)

    await sender.send(build_message(mail, mail_from=MAIL_FROM))

    message = smtp_server.received.message()
    assert message.get_content_type() == "text/plain"
    assert _lines(message.get_content()) == "Hë\n"


async def test_wrong_credentials_are_a_permanent_failure(smtp_server: SmtpServer) -> None:
    url = f"smtp://{USER}:wrong@127.0.0.1:{smtp_server.port}"
    sender = SmtpSender(smtp_options(url), timeout=5)

    with pytest.raises(MailError) as failed:
        await sender.send(build_message(_order_mail(), mail_from=MAIL_FROM))

    assert failed.value.transient is False
    assert "wrong" not in str(failed.value)
    assert smtp_server.received.envelopes == []


async def test_an_unreachable_server_is_a_transient_failure() -> None:
    # a port that was free a moment ago and has no listener
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = SmtpSender(smtp_options(f"smtp://127.0.0.1:{port}"), timeout=2)

    with pytest.raises(MailError) as failed:
        await sender.send(build_message(_order_mail(), mail_from=MAIL_FROM))

    assert failed.value.transient is True


async def test_the_outbox_gets_a_parseable_eml(tmp_path: Path) -> None:
    # given the embedded mode (no SMTP_URL) with an outbox directory
    sender = mail_sender(load_settings(outbox_dir=str(tmp_path / "outbox")))
    assert isinstance(sender, OutboxSender)
    mail = _order_mail()

    # when a mail is sent
    await sender.send(build_message(mail, mail_from=MAIL_FROM))

    # then one .eml file holds it whole, and nothing temporary is left
    files = list((tmp_path / "outbox").iterdir())
    assert [path.suffix for path in files] == [".eml"]
    assert files[0] == sender.path_for(mail.message_id)
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == mail.message_id
    assert message["Subject"] == mail.subject
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    assert _lines(text.get_content()) == mail.text
    assert "19.98 EUR" in html.get_content()


async def test_the_outbox_skips_a_message_id_it_has_already(tmp_path: Path) -> None:
    # given an order's confirmation in the outbox
    outbox = OutboxSender(tmp_path)
    first = build_message(_order_mail(), mail_from=MAIL_FROM)
    assert outbox.write(first) is True
    written = outbox.path_for(_order_mail().message_id).read_bytes()

    # when a retried job sends it again (built anew: another Date header)
    retried = build_message(_order_mail(), mail_from=MAIL_FROM)
    retried.replace_header("Subject", "changed")
    skipped = outbox.write(retried)
    await outbox.send(retried)

    # then the first file stays as it was, alone; another order gets its own file
    assert skipped is False
    assert outbox.path_for(_order_mail().message_id).read_bytes() == written
    assert outbox.write(build_message(_order_mail(43), mail_from=MAIL_FROM)) is True
    assert _suffixes(tmp_path) == [".eml", ".eml"]


async def test_concurrent_writes_of_one_message_id_leave_one_file(tmp_path: Path) -> None:
    outbox = OutboxSender(tmp_path)
    messages = [build_message(_order_mail(), mail_from=MAIL_FROM) for _ in range(8)]

    results = await asyncio.gather(*(asyncio.to_thread(outbox.write, m) for m in messages))

    assert sorted(results) == [False] * 7 + [True]
    assert _suffixes(tmp_path) == [".eml"]


def test_message_ids_are_stable_and_safe() -> None:
    assert message_id("order-confirmation", 42, domain="shop.example") == (
        "<order-confirmation.42@shop.example>"
    )
    assert message_id("status", "a b<>@", domain="d.example") == "<status.a-b@d.example>"
    assert sender_domain(MAIL_FROM) == "shop.example"


@pytest.mark.parametrize(
    ("url", "starttls", "expected"),
    [
        ("smtp://mail.example", "auto", ("mail.example", 25, None, None, False, None)),
        (
            "smtp://u:p%40ss@mail.example:587",
            "require",
            ("mail.example", 587, "u", "p@ss", False, True),
        ),
        ("smtp://mail.example:2525", "off", ("mail.example", 2525, None, None, False, False)),
        ("smtps://u:p@mail.example", "auto", ("mail.example", 465, "u", "p", True, False)),
    ],
)
def test_smtp_urls_give_the_connection_options(
    url: str, starttls: Any, expected: tuple[object, ...]
) -> None:
    options = smtp_options(url, starttls=starttls)

    assert (
        options.hostname,
        options.port,
        options.username,
        options.password,
        options.use_tls,
        options.start_tls,
    ) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOPGRAPH_SMTP_URL", "http://mail.example"),
        ("SHOPGRAPH_SMTP_URL", "smtp://"),
        ("SHOPGRAPH_SMTP_URL", "smtp://u:secretpw@mail.example:notaport"),
        ("SHOPGRAPH_SMTP_URL", "smtp://mail.example/path"),
        ("SHOPGRAPH_SMTP_STARTTLS", "sometimes"),
        ("SHOPGRAPH_MAIL_FROM", "nobody"),
        ("SHOPGRAPH_OUTBOX_DIR", ""),
    ],
)
def test_bad_mail_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert str(refused.value).startswith(f"{variable}: ")
    assert "secretpw" not in str(refused.value)


def test_smtp_options_never_show_the_password() -> None:
    options = SmtpOptions("h", 25, "user", "hunter2", use_tls=False, start_tls=None)

    assert "hunter2" not in repr(options)
    assert "hunter2" not in repr(load_settings(smtp_url="smtp://user:hunter2@h"))
