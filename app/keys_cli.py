"""`shopgraph keys rotate`: re-encrypt personal data to the current data key (README: Keys).

Kept out of app/cli.py (near its size limit); app/cli.py adds these commands to the CLI.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

keys_cli = typer.Typer(name="keys", help="Personal-data encryption keys.", no_args_is_help=True)


@keys_cli.command("rotate")
def rotate(
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            help="The key to rotate to; must be SHOPGRAPH_DATA_KEY_ID (default: that one).",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Rows per transaction (1 to 10000).", min=1, max=10_000)
    ] = 200,
) -> None:
    """Re-encrypt every sealed column to SHOPGRAPH_DATA_KEY_ID in small batches, while the
    servers keep running (keep the old keys in SHOPGRAPH_DATA_KEYS until this is done).
    Prints one line per table; safe to stop and run again."""
    from app.cli import CommandError, _settings
    from app.db.checks import check_ready
    from app.platform.crypto import DataCipher
    from app.services import keys

    settings = _settings()
    cipher = DataCipher.from_settings(settings)
    try:
        target = keys.check_target(cipher, key_id)
    except keys.RotationError as error:
        raise CommandError(error.message) from None

    def report(done: keys.TableRotation) -> None:
        left = f", {done.left} rows left (changed meanwhile: run again)" if done.left else ""
        typer.echo(f"{done.table}: {done.rotated} rows re-encrypted to key id {target}{left}")

    async def run() -> list[keys.TableRotation]:
        db = await check_ready(settings)
        try:
            return await keys.rotate_keys(db, cipher=cipher, batch_size=batch_size, on_table=report)
        finally:
            await db.dispose()

    try:
        results = asyncio.run(run())
    except keys.RotationError as error:
        raise CommandError(f"{error.message} (rows re-encrypted so far stay so)") from None
    if any(result.left for result in results):
        raise typer.Exit(1)
