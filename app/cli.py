"""The `shopgraph` command: serve, worker, migrate, seed, export-schema, users, partners,
documents, keys.

Every command exits non-zero with one clear line on stderr when input or configuration is bad.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.documents_cli import documents_cli
from app.keys_cli import keys_cli
from app.platform.scopes import known_list
from app.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Row

cli = typer.Typer(
    name="shopgraph",
    help="shopgraph: a GraphQL API server for online shops.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

SCHEMA_PATH = Path("schema.graphql")
# What a `serve` worker imports as its HTTP protocol: server_protocol(settings), built in app.asgi.
WORKER_HTTP_PROTOCOL = "app.asgi:http_protocol"
WORKER_WS_PROTOCOL = "app.http.server_protocol:GoingAwayWebSocketProtocol"
# uvicorn options spelled `--flag true|false` rather than `--flag` / `--no-flag`.
_BOOLEAN_VALUED = frozenset({"ws_per_message_deflate"})


class CommandError(Exception):
    """A command cannot go on; the message is the one line the user sees."""


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as error:
        raise CommandError(str(error)) from None


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.", min=1, max=65535)] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.", min=1, max=64)] = None,
) -> None:
    """Serve GraphQL (and GraphiQL in development) over HTTP."""
    from app.db.checks import check_ready

    settings = _settings(host=host, port=port, workers=workers)

    async def ready() -> None:
        db = await check_ready(settings)
        await db.dispose()

    asyncio.run(ready())
    _check_can_listen(settings.host, settings.port)
    server_options = uvicorn_argv(uvicorn_options(settings))
    # Become uvicorn: the serving process then holds only what serving needs (not the
    # CLI, alembic and the checks: ~10 MB per worker), and keeps this process id.
    # -P and --app-dir: `app` is imported from where this package lives, never from an
    # `app/` folder in the working directory.
    argv = [
        sys.executable,
        "-P",
        "-m",
        "uvicorn",
        "app.asgi:app",
        "--app-dir",
        str(Path(__file__).resolve().parent.parent),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--log-level",
        settings.log_level.lower(),
        "--no-access-log",
        *server_options,
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@cli.command()
def worker() -> None:
    """Run background jobs (production: from the Redis broker) until SIGTERM or Ctrl-C."""
    import signal

    from app.background import run_worker_process
    from app.db.checks import check_ready
    from app.platform.logging import configure_logging
    from app.settings import Environment

    settings = _settings()
    if settings.redis_url is None:
        raise CommandError(
            "SHOPGRAPH_REDIS_URL: the worker takes jobs from Redis; without it the server "
            "runs them itself"
        )
    configure_logging(level=settings.log_level, json_lines=settings.env is Environment.PRODUCTION)

    async def main() -> None:
        db = await check_ready(settings)
        await db.dispose()
        task = asyncio.ensure_future(run_worker_process(settings))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn.Config options `serve` sets from the settings: protocol, limits, proxies.

    The protocol is uvicorn's httptools one with a deadline and a size limit on request
    heads (app/http/server_protocol.py). With no trusted proxies no proxy header is read at
    all (uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1, and any local
    process could pick its address).
    """
    from app.engine.compat import IncompatibleDependency
    from app.http.server_protocol import server_protocol

    try:
        protocol = server_protocol(settings)
    except IncompatibleDependency as error:
        raise CommandError(f"dependencies: {error}") from None
    options: dict[str, Any] = {
        "http": protocol,
        # WebSockets closed with 1001 at shutdown (clients reconnect to another server).
        "ws": WORKER_WS_PROTOCOL,
        # GraphQL messages are small JSON: compressing them costs more CPU than it saves
        # bytes, and each connection's zlib contexts cost ~50 KB of memory.
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        "timeout_keep_alive": settings.timeout_keep_alive_seconds,
        "h11_max_incomplete_event_size": settings.h11_max_incomplete_event_size,
        "timeout_graceful_shutdown": settings.timeout_graceful_shutdown_seconds,
        "proxy_headers": bool(settings.trusted_proxies),
    }
    if settings.limit_concurrency is not None:
        options["limit_concurrency"] = settings.limit_concurrency
    if settings.trusted_proxies:
        options["forwarded_allow_ips"] = ",".join(settings.trusted_proxies)
    return options


def uvicorn_argv(options: dict[str, Any]) -> list[str]:
    """`uvicorn_options` as uvicorn command-line arguments."""
    argv: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if name == "http" and isinstance(value, type):
            # A class cannot go on a command line: each worker builds the same one from
            # the same settings (the environment) in the module that builds its app.
            argv += [flag, WORKER_HTTP_PROTOCOL]
        elif isinstance(value, bool) and name in _BOOLEAN_VALUED:
            argv += [flag, "true" if value else "false"]
        elif isinstance(value, bool):
            argv.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            argv += [flag, str(value)]
    return argv


def _check_can_listen(host: str, port: int) -> None:
    """Bind host:port once as uvicorn will (SO_REUSEADDR), so a busy port is one clear line."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise CommandError(
            f"cannot listen on {host} ({error.strerror}): pass --host or set SHOPGRAPH_HOST"
        ) from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # As asyncio's create_server: an IPv6 socket does not also claim IPv4.
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise CommandError(
                        f"port {port} on {host} is in use: pass --port or set SHOPGRAPH_PORT"
                    ) from None
                raise CommandError(
                    f"cannot listen on port {port} of {host} ({error.strerror}): "
                    "pass --host/--port or set SHOPGRAPH_HOST/SHOPGRAPH_PORT"
                ) from None


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    from app.db.checks import run_migrations

    settings = _settings()
    run_migrations(settings)
    typer.echo("database is at the newest migration")


@cli.command()
def seed(
    products: Annotated[
        int, typer.Option(help="How many demo products.", min=0, max=1_000_000)
    ] = 500,
    random_seed: Annotated[
        int, typer.Option(help="Seed of the generator; same seed, same shop.")
    ] = 42,
) -> None:
    """Add a deterministic demo catalog (idempotent: only what is missing is added)."""
    from sqlalchemy import text

    from app.db.checks import check_ready
    from app.platform.crypto import DataCipher
    from app.services.seed import DemoStaff, seed_catalog, seed_demo_staff
    from app.settings import Environment

    settings = _settings()

    async def run() -> None:
        staff: DemoStaff | None = None
        db = await check_ready(settings)
        started = time.perf_counter()
        try:
            async with db.engine.begin() as connection:
                if not settings.is_sqlite:  # bulk inserts: not bound by a request's timeout
                    await connection.execute(text("SET LOCAL statement_timeout = 0"))
                report = await seed_catalog(
                    connection,
                    products=products,
                    random_seed=random_seed,
                    currency=settings.currency,
                    cipher=DataCipher.from_settings(settings),
                )
                # A published password: development only, never in production.
                if settings.env is Environment.DEVELOPMENT:
                    staff = await seed_demo_staff(
                        connection, cipher=DataCipher.from_settings(settings)
                    )
        finally:
            await db.dispose()
        typer.echo(
            f"seeded {report.products} products, {report.variants} variants, {report.images} images, "
            f"{report.reviews} reviews, {report.categories} categories, {report.customers} customers "
            f"in {time.perf_counter() - started:.1f}s"
        )
        if staff is not None:
            typer.echo(staff.login_line())

    asyncio.run(run())


@cli.command("export-schema")
def export_schema(
    path: Annotated[Path, typer.Argument(help="Where to write the SDL.")] = SCHEMA_PATH,
) -> None:
    """Write the GraphQL schema (SDL) to a file."""
    from app.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    try:
        path.write_text(sdl, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
    typer.echo(f"wrote {path}")


partners_cli = typer.Typer(
    name="partners", help="Partner applications (OAuth2 client credentials).", no_args_is_help=True
)
cli.add_typer(partners_cli)
cli.add_typer(documents_cli)  # app/documents_cli.py
cli.add_typer(keys_cli)  # app/keys_cli.py


@partners_cli.command("create")
def create_partner(
    name: Annotated[str, typer.Argument(help="Unique name of the partner.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", help=f"A scope it may request (repeatable): one of {known_list()}."
        ),
    ] = None,
    tier: Annotated[
        str, typer.Option(help="Rate-limit tier, e.g. standard or premium.")
    ] = "standard",
) -> None:
    """Register a partner and print its client_id and client_secret (shown only this once)."""
    from app.db.checks import check_ready
    from app.platform.errors import DomainError
    from app.platform.passwords import password_hasher
    from app.services import partners

    settings = _settings()

    async def run() -> partners.PartnerCredentials:
        db = await check_ready(settings)
        try:
            return await partners.create_partner(
                db,
                name=name,
                scopes=scope or [],
                rate_tier=tier,
                known_tiers=frozenset(settings.partner_tiers),
                hasher=password_hasher(settings.password_hash_concurrency),
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        finally:
            await db.dispose()

    credentials = asyncio.run(run())
    typer.echo(f"client_id={credentials.client_id}")
    typer.echo(f"client_secret={credentials.client_secret}")


@partners_cli.command("revoke")
def revoke_partner(
    name: Annotated[str, typer.Argument(help="Name of the partner.")],
) -> None:
    """Revoke a partner: its tokens stop working and it gets no new ones."""
    from app.db.checks import check_ready
    from app.platform.errors import DomainError
    from app.services import partners

    settings = _settings()

    async def run() -> None:
        db = await check_ready(settings)
        try:
            await partners.revoke_partner(db, name=name)
        except DomainError as error:
            raise CommandError(error.message) from None
        finally:
            await db.dispose()

    asyncio.run(run())
    typer.echo(f"revoked partner {name!r}")


class RoleChoice(StrEnum):
    """Roles as typed on the command line."""

    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


users_cli = typer.Typer(name="users", help="User accounts.", no_args_is_help=True)
cli.add_typer(users_cli)


@users_cli.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="Sign-in email (stored lower-cased).")],
    password: Annotated[str, typer.Option(help="Password; the registration rules apply.")],
    role: Annotated[
        RoleChoice, typer.Option(help="What the user may do.", case_sensitive=False)
    ] = RoleChoice.CUSTOMER,
    full_name: Annotated[
        str | None, typer.Option(help="Full name (default: the part of the email before @).")
    ] = None,
) -> None:
    """Create a user account, e.g. the first admin."""
    from app.db.checks import check_ready
    from app.models import Role
    from app.platform.crypto import DataCipher
    from app.platform.errors import DomainError
    from app.platform.sealed_users import open_email
    from app.services import accounts

    settings = _settings()

    async def run() -> Row[Any]:
        db = await check_ready(settings)
        try:
            return await accounts.create_user(
                db,
                settings=settings,
                email=email,
                password=password,
                full_name=full_name if full_name is not None else email.partition("@")[0],
                role=Role(role.value.upper()),
            )
        except DomainError as error:
            raise CommandError(
                f"--{_option_name(error.field)}: {error.message}" if error.field else error.message
            ) from None
        finally:
            await db.dispose()

    user = asyncio.run(run())
    email_shown = open_email(DataCipher.from_settings(settings), user.email)
    typer.echo(f"created {role.value} {email_shown} (id {user.id})")


def _option_name(field: str) -> str:
    # The options are named after the service's fields: full_name is --full-name.
    return field.replace("_", "-")


def main() -> None:
    """Entry point of the `shopgraph` console script."""
    from app.db.checks import NotReady

    try:
        cli(standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except typer.TyperException as error:
        # Usage errors as one line, not a box: scripts and people read them alike.
        format_message = getattr(error, "format_message", None)
        message = format_message() if callable(format_message) else str(error)
        typer.echo(f"error: {message} (see `shopgraph --help`)", err=True)
        sys.exit(int(getattr(error, "exit_code", 2)))
    except (CommandError, NotReady) as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
