"""Trusted documents: the operations a client may run, registered by the operator by hash.

A manifest is Apollo's persisted-query manifest
(`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id",
"name", "type", "body"}]}`) or a plain `{hash: document}` map. Every hash must be the
SHA-256 (lower-case hex) of its document's UTF-8 text, and every document must pass
the server's checks (`check`: schema, limits and cost; app.engine.registration_problem;
for a partner also its scopes: a document its scopes can never run is refused): one
failure refuses the whole manifest, naming the hash and the reason, and stores nothing.
A client is a partner (by name: only that partner may run them) or a first-party app
(any other name: anonymous and signed-in callers may run them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from app.db import Database
from app.loaders.base import table_of
from app.models import Partner, TrustedDocument
from app.models.base import utcnow
from app.platform.errors import DomainError, NotFound
from app.platform.persisted_queries import sha256_hex

documents = table_of(TrustedDocument)
partners = table_of(Partner)

APOLLO_FORMAT = "apollo-persisted-query-manifest"
CLIENT_MAX = 100
NAME_MAX = 200
HASH = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
OPERATION_TYPES = ("query", "mutation", "subscription")

# Why a document cannot be registered, or None: built by the caller from the server's engine
# and settings. Called with the document and the scopes of the partner the client is (None
# for a first-party app: no scopes are checked for its callers).
Check = Callable[[str, frozenset[str] | None], str | None]


class ManifestError(DomainError):
    """The manifest cannot be registered; the message names the entry and the reason."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One document of a manifest."""

    sha256: str
    name: str | None
    body: str


@dataclass(frozen=True, slots=True)
class Registered:
    """What `add_documents` did."""

    client: str
    partner: bool  # the client is a partner (else a first-party app)
    added: int
    already: int  # registered before, left as they were


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A registered document as `list_documents` shows it."""

    client: str
    partner: bool
    sha256: str
    name: str | None
    size: int
    body: str
    partner_scopes: frozenset[str] | None  # what the partner holds; None for a first-party app


def parse_manifest(text: str) -> list[ManifestEntry]:
    """The entries of an Apollo manifest or a `{hash: document}` map; ManifestError if neither."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(
            f"the manifest is not valid JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise ManifestError("the manifest must be a JSON object")
    if "format" in data:
        entries = _apollo_entries(data)
    else:
        entries = [_map_entry(key, body) for key, body in data.items()]
    if not entries:
        raise ManifestError("the manifest holds no documents")
    return entries


def _apollo_entries(data: dict[str, object]) -> list[ManifestEntry]:
    if data.get("format") != APOLLO_FORMAT or data.get("version") != 1:
        raise ManifestError(f'expected "format": "{APOLLO_FORMAT}" and "version": 1')
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError('"operations" must be a list')
    entries = []
    for number, operation in enumerate(operations, 1):
        if not isinstance(operation, dict):
            raise ManifestError(f"operation {number}: must be an object with id, name, type, body")
        ident, name, kind, body = (operation.get(key) for key in ("id", "name", "type", "body"))
        where = f"operation {number} ({ident!r})"
        if not isinstance(name, str) or not name or len(name) > NAME_MAX:
            raise ManifestError(f"{where}: `name` must be a string of 1 to {NAME_MAX} characters")
        if kind not in OPERATION_TYPES:
            raise ManifestError(f"{where}: `type` must be one of {', '.join(OPERATION_TYPES)}")
        entries.append(_map_entry(ident, body, name=name))
    return entries


def _map_entry(key: object, body: object, *, name: str | None = None) -> ManifestEntry:
    found = HASH.match(key) if isinstance(key, str) else None
    if found is None:
        raise ManifestError(f"{key!r}: a hash must be 64 lower-case hex digits (or sha256:...)")
    sha256 = found.group(1)
    if not isinstance(body, str) or not body.strip():
        raise ManifestError(f"{sha256}: the document must be a non-empty string")
    if sha256_hex(body) != sha256:
        raise ManifestError(
            f"{sha256}: the hash does not match its document (its SHA-256 is {sha256_hex(body)})"
        )
    return ManifestEntry(sha256, name, body)


async def add_documents(
    db: Database, *, client: str, entries: list[ManifestEntry], check: Check
) -> Registered:
    """Register every entry for `client`, or none: ManifestError names the first that fails."""
    client = _client_name(client)
    async with db.unit_of_work() as work:
        connection = work.connection
        partner = (
            await connection.execute(
                select(partners.c.id, partners.c.scopes).where(partners.c.name == client)
            )
        ).one_or_none()
        partner_id = None if partner is None else partner.id
        held = None if partner is None else frozenset(partner.scopes or ())
        for entry in entries:
            reason = check(entry.body, held)
            if reason is not None:
                raise ManifestError(f"{entry.sha256}: {reason}")
        known = set(
            (
                await connection.execute(
                    select(documents.c.sha256).where(documents.c.client == client)
                )
            ).scalars()
        )
        fresh = {entry.sha256: entry for entry in entries if entry.sha256 not in known}
        if fresh:
            now = utcnow()
            await connection.execute(
                insert(documents),
                [
                    {
                        "client": client,
                        "partner_id": partner_id,
                        "sha256": entry.sha256,
                        "name": entry.name,
                        "body": entry.body,
                        "created_at": now,
                    }
                    for entry in fresh.values()
                ],
            )
    return Registered(client, partner_id is not None, len(fresh), len(entries) - len(fresh))


async def list_documents(db: Database, *, client: str | None = None) -> list[DocumentRow]:
    """The registered documents, of one client or of all, by client then name."""
    query = (
        select(
            documents.c.client,
            documents.c.partner_id,
            documents.c.sha256,
            documents.c.name,
            documents.c.body,
            partners.c.scopes,
        )
        .outerjoin(partners, partners.c.id == documents.c.partner_id)
        .order_by(documents.c.client, documents.c.name, documents.c.sha256)
    )
    if client is not None:
        query = query.where(documents.c.client == client.strip())
    async with db.read() as connection:
        rows = (await connection.execute(query)).all()
    return [
        DocumentRow(
            row.client,
            row.partner_id is not None,
            row.sha256,
            row.name,
            len(row.body),
            row.body,
            None if row.partner_id is None else frozenset(row.scopes or ()),
        )
        for row in rows
    ]


async def remove_document(db: Database, *, client: str, sha256: str) -> None:
    """Unregister one document of `client`; NotFound when it has none with that hash."""
    found = HASH.match(sha256.strip())
    if found is None:
        raise DomainError(f"{sha256!r} is not a hash: 64 lower-case hex digits (or sha256:...)")
    async with db.unit_of_work() as work:
        result = await work.connection.execute(
            delete(documents).where(
                documents.c.client == client.strip(), documents.c.sha256 == found.group(1)
            )
        )
    if result.rowcount == 0:
        raise NotFound(f"client {client!r} has no document {found.group(1)}")


async def find_document(db: Database, *, partner_id: int | None, sha256: str) -> str | None:
    """The text a caller may run under `sha256`: its partner's, or a first-party app's (None)."""
    owner = (
        documents.c.partner_id.is_(None)
        if partner_id is None
        else documents.c.partner_id == partner_id
    )
    async with db.read() as connection:
        return (
            await connection.execute(
                select(documents.c.body).where(documents.c.sha256 == sha256, owner).limit(1)
            )
        ).scalar_one_or_none()


def _client_name(client: str) -> str:
    client = client.strip()
    if not client or len(client) > CLIENT_MAX:
        raise DomainError(f"the client name must be 1 to {CLIENT_MAX} characters", field="client")
    return client
