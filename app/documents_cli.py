"""`shopgraph documents add / list / remove`: trusted documents (README: Trusted documents).

Kept out of app/cli.py (near its size limit); app/cli.py adds these commands to the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

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
    """Check every document of a manifest (schema, limits, cost) and register them all, or none."""
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

    def check(body: str) -> str | None:
        return registration_problem(
            executor, body, max_cost=settings.max_query_cost, max_bytes=settings.max_query_bytes
        )

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
    """One line per registered document: client, kind, sha256:hash, operation name, size."""
    from app.cli import _settings
    from app.db.checks import check_ready
    from app.services import documents

    settings = _settings()

    async def run() -> list[documents.DocumentRow]:
        db = await check_ready(settings)
        try:
            return await documents.list_documents(db, client=client)
        finally:
            await db.dispose()

    for row in asyncio.run(run()):
        kind = "partner" if row.partner else "first-party"
        typer.echo(f"{row.client}\t{kind}\tsha256:{row.sha256}\t{row.name or '-'}\t{row.size} B")


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
