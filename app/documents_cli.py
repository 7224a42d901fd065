"""`shopgraph documents add / list / remove`: trusted documents (README: Trusted documents).

Kept out of app/cli.py (near its size limit); app/cli.py adds these commands to the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from app.engine import GraphQLExecutor, Required

documents_cli = typer.Typer(
    name="documents", help="Trusted documents (persisted operations).", no_args_is_help=True
)


@documents_cli.command("add")
def add(
    manifest: Annotated[
        Path, typer.Argument(help="Apollo persisted-query manifest, or a {hash: document} map.")
    ],
    client: Annotated[
        str, typer.Option("--client", help="A partner's name, or a first-party app's.")
    ],
) -> None:
    """Check every document of a manifest (schema, limits, cost; a partner's scopes) and register
    them all, or none."""
    from app.cli import CommandError, _settings
    from app.db.checks import check_ready
    from app.engine import registration_problem
    from app.main import build_executor
    from app.platform.errors import DomainError
    from app.schema import build_schema
    from app.services import documents

    settings = _settings()
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise CommandError(f"cannot read {manifest}: {reason}") from None
    executor = build_executor(settings, build_schema())

    def check(body: str, partner_scopes: frozenset[str] | None) -> str | None:
        problem = registration_problem(
            executor, body, max_cost=settings.max_query_cost, max_bytes=settings.max_query_bytes
        )
        if problem is None and partner_scopes is not None:
            problem = outside_partner_scopes(executor, body, partner_scopes)
        return problem

    async def run() -> documents.Registered:
        entries = documents.parse_manifest(text)  # a bad file is refused before connecting
        db = await check_ready(settings)
        try:
            return await documents.add_documents(db, client=client, entries=entries, check=check)
        finally:
            await db.dispose()

    try:
        done = asyncio.run(run())
    except DomainError as error:
        raise CommandError(f"{manifest}: {error.message}; nothing was registered") from None
    kind = "partner" if done.partner else "first-party client"
    typer.echo(
        f"registered {done.added} documents for {kind} {done.client!r} "
        f"({done.already} were registered already)"
    )


@documents_cli.command("list")
def list_(
    client: Annotated[str | None, typer.Option("--client", help="Only this client's.")] = None,
) -> None:
    """One line per registered document: client, kind, sha256:hash, operation name, size, and
    for a partner's the scopes it needs (and any the partner lacks)."""
    from app.cli import _settings
    from app.db.checks import check_ready
    from app.main import build_executor
    from app.schema import build_schema
    from app.services import documents

    settings = _settings()

    async def run() -> list[documents.DocumentRow]:
        db = await check_ready(settings)
        try:
            return await documents.list_documents(db, client=client)
        finally:
            await db.dispose()

    rows = asyncio.run(run())
    executor = build_executor(settings, build_schema()) if any(r.partner for r in rows) else None
    for row in rows:
        kind = "partner" if row.partner else "first-party"
        scopes = "-"
        if executor is not None and row.partner_scopes is not None:
            scopes = scopes_needed(executor, row.body, row.partner_scopes)
        typer.echo(
            f"{row.client}\t{kind}\tsha256:{row.sha256}\t{row.name or '-'}\t{row.size} B\t{scopes}"
        )


@documents_cli.command("remove")
def remove(
    sha256: Annotated[str, typer.Argument(metavar="HASH", help="sha256:<hex> or the hex.")],
    client: Annotated[str, typer.Option("--client", help="The client it is registered for.")],
) -> None:
    """Unregister one document of a client: it stops running at once."""
    from app.cli import CommandError, _settings
    from app.db.checks import check_ready
    from app.platform.errors import DomainError
    from app.services import documents

    settings = _settings()

    async def run() -> None:
        db = await check_ready(settings)
        try:
            await documents.remove_document(db, client=client, sha256=sha256)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except DomainError as error:
        raise CommandError(error.message) from None
    typer.echo(f"removed {sha256} of {client!r}")


def _always_required(executor: GraphQLExecutor, body: str) -> dict[str | None, Required] | str:
    """The partner scopes each operation of a valid document needs whatever its variables (the
    fields under a `@skip`/`@include` that reads a variable are left to each request), or why not."""
    from app.engine import QueryTooComplex, always_required
    from app.schema.scopes import SCOPE_KEY

    try:
        return always_required(executor, body, SCOPE_KEY)
    except QueryTooComplex as error:
        return f"QUERY_TOO_COMPLEX: {error}"


def outside_partner_scopes(
    executor: GraphQLExecutor, body: str, partner_scopes: frozenset[str]
) -> str | None:
    """Why a partner holding `partner_scopes` could never run this valid document, or None."""
    from app.platform.scopes import outside_parts

    required = _always_required(executor, body)
    if isinstance(required, str):
        return required
    held = ", ".join(sorted(partner_scopes)) or "no scopes"
    for name, needs in required.items():
        missing = {value: where for value, where in needs.items() if value not in partner_scopes}
        if missing:
            shown = f"operation {name!r}" if name else "the operation"
            return f"FORBIDDEN: {shown} is outside the partner's scopes ({held}): " + "; ".join(
                outside_parts(missing)
            )
    return None


def scopes_needed(executor: GraphQLExecutor, body: str, partner_scopes: frozenset[str]) -> str:
    """`documents list`'s last column for a partner's document: the scopes it needs, and those
    the partner lacks (a document registered before registration checked scopes)."""
    if executor.prepare(body).errors:
        return "not valid against the current schema"
    required = _always_required(executor, body)
    if isinstance(required, str):
        return required
    needed = sorted({str(value) for needs in required.values() for value in needs})
    shown = "needs " + (",".join(needed) if needed else "no scope")
    lacking = [value for value in needed if value not in partner_scopes]
    if lacking:
        shown += f" (the partner lacks {','.join(lacking)})"
    return shown
