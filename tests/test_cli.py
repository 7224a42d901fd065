"""The `shopgraph` console script, run as operators run it: a subprocess with an environment."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from app.schema import build_schema
from app.settings import Settings

SHOPGRAPH = Path(sys.executable).parent / "shopgraph"
UNREACHABLE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Run:
    """What a finished command printed and returned."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        """Non-empty lines written to stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


class Shopgraph:
    """Runs `shopgraph ...` in a temporary directory with only the SHOPGRAPH_* settings given."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.database_url = f"sqlite+aiosqlite:///{workdir / 'cli.db'}"

    def __call__(self, *args: str, **settings: str) -> Run:
        """Run one command; `settings` are SHOPGRAPH_ variables without the prefix."""
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")
        }
        env["SHOPGRAPH_DATABASE_URL"] = self.database_url
        env.update({f"SHOPGRAPH_{name.upper()}": value for name, value in settings.items()})
        completed = subprocess.run(
            [str(SHOPGRAPH), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        return Run(completed.returncode, completed.stdout, completed.stderr)

    def product_count(self) -> int:
        """Products in the command's SQLite database, read directly."""
        with sqlite3.connect(self.workdir / "cli.db") as connection:
            (count,) = connection.execute("SELECT count(*) FROM products").fetchone()
        return int(count)


@pytest.fixture
def shopgraph(tmp_path: Path) -> Shopgraph:
    """An operator at a shell in an empty directory, with an embedded database there."""
    return Shopgraph(tmp_path)


def _assert_one_error_line(run: Run, starts_with: str) -> str:
    assert run.returncode != 0, run
    assert len(run.stderr_lines) == 1, run.stderr
    [line] = run.stderr_lines
    assert line.startswith(starts_with), line
    assert "Traceback" not in run.stderr
    return line


def test_migrate_then_seed_is_idempotent(shopgraph: Shopgraph) -> None:
    migrated = shopgraph("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "newest migration" in migrated.stdout

    first = shopgraph("seed", "--products", "20")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("seeded 20 products,"), first.stdout
    assert shopgraph.product_count() == 20

    second = shopgraph("seed", "--products", "20")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("seeded 0 products,"), second.stdout
    assert shopgraph.product_count() == 20

    assert not (shopgraph.workdir / "shopgraph.db").exists()


@pytest.mark.parametrize(
    ("command", "settings", "named"),
    [
        ("serve", {"port": "abc"}, "SHOPGRAPH_PORT"),
        ("migrate", {"database_url": "mysql://x"}, "SHOPGRAPH_DATABASE_URL"),
        ("seed", {"env": "production"}, "SHOPGRAPH_SECRET_KEY"),
    ],
    ids=["port-text", "mysql", "production-no-secret"],
)
def test_bad_settings_exit_with_one_line_naming_the_setting(
    shopgraph: Shopgraph, command: str, settings: dict[str, str], named: str
) -> None:
    run = shopgraph(command, **settings)

    _assert_one_error_line(run, f"error: {named}")
    assert run.returncode == 2


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"cors_origins": "localhost:3000"}, "SHOPGRAPH_CORS_ORIGINS"),
        ({"partner_tiers": "premium"}, "SHOPGRAPH_PARTNER_TIERS"),
        ({"partner_tiers": "premium:5000/0"}, "SHOPGRAPH_PARTNER_TIERS"),
        ({"jwt_keys": "not-a-pair"}, "SHOPGRAPH_JWT_KEYS"),
        ({"cors_origin": "http://localhost:3000"}, "SHOPGRAPH_CORS_ORIGIN"),
    ],
    ids=[
        "origin-without-scheme",
        "tier-name-only",
        "tier-restore-rate-0",
        "jwt-keys",
        "misspelled",
    ],
)
def test_serve_refuses_bad_list_and_dict_settings_in_one_line(
    shopgraph: Shopgraph, settings: dict[str, str], named: str
) -> None:
    run = shopgraph("serve", **settings)

    _assert_one_error_line(run, f"error: {named}: ")
    assert run.returncode == 2


def test_list_settings_given_as_plain_text_are_accepted(shopgraph: Shopgraph) -> None:
    run = shopgraph(
        "migrate",
        cors_origins="http://localhost:3000,http://127.0.0.1:5173",
        partner_tiers="standard:1000/50,premium:5000/250",
        jwt_keys="2026:" + "k" * 40,
    )

    assert run.returncode == 0, run.stderr


def test_serve_on_a_busy_port_says_so_in_one_line(shopgraph: Shopgraph) -> None:
    assert shopgraph("migrate").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        run = shopgraph("serve", "--port", str(port))

    line = _assert_one_error_line(run, f"error: port {port} on 127.0.0.1 is in use")
    assert "--port" in line
    assert "SHOPGRAPH_PORT" in line
    assert "Uvicorn running" not in run.stdout + run.stderr


def test_serve_on_an_address_it_cannot_bind_says_so_in_one_line(shopgraph: Shopgraph) -> None:
    assert shopgraph("migrate").returncode == 0

    # TEST-NET-1 (RFC 5737): never assigned to this machine.
    run = shopgraph("serve", "--host", "192.0.2.1", "--port", "8000")

    line = _assert_one_error_line(run, "error: cannot listen on port 8000 of 192.0.2.1")
    assert "SHOPGRAPH_HOST" in line


# A value no setting accepts; "x" unless "x" is a valid value of that setting.
NONSENSE: dict[str, str] = {name: "x" for name in Settings.model_fields} | {
    "secret_key": "",
    "host": "not a host",
    "rate_limit_key_prefix": "",
    "cache_key_prefix": "",
    "outbox_dir": "",
    "jobs_stream": "",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Only the SHOPGRAPH_* variables a test sets, with an embedded database in tmp."""
    for name in [name for name in os.environ if name.startswith("SHOPGRAPH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SHOPGRAPH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    yield monkeypatch


@pytest.mark.parametrize(("field", "value"), sorted(NONSENSE.items()), ids=sorted(NONSENSE))
def test_every_setting_with_a_nonsense_value_stops_start_up_in_one_line(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: str,
) -> None:
    # In process, through the console script's entry point: one interpreter start per
    # setting would cost a second each.
    variable = f"SHOPGRAPH_{field.upper()}"
    environment.setenv(variable, value)
    environment.setattr(sys, "argv", ["shopgraph", "migrate"])

    with pytest.raises(SystemExit) as exited:
        main()

    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert exited.value.code == 2, captured
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {variable}: "), lines[0]
    assert "newest migration" not in captured.out


@pytest.mark.parametrize("command", ["seed", "migrate"])
def test_an_unreachable_database_exits_with_one_line(shopgraph: Shopgraph, command: str) -> None:
    run = shopgraph(command, database_url=UNREACHABLE_POSTGRES)

    _assert_one_error_line(run, "error: SHOPGRAPH_DATABASE_URL: cannot reach the database")


def test_migrate_into_a_missing_directory_exits_with_one_line(shopgraph: Shopgraph) -> None:
    missing = shopgraph.workdir / "no" / "such" / "dir" / "x.db"

    run = shopgraph("migrate", database_url=f"sqlite+aiosqlite:///{missing}")

    _assert_one_error_line(run, "error: SHOPGRAPH_DATABASE_URL")


def test_serve_refuses_an_unmigrated_database(shopgraph: Shopgraph) -> None:
    run = shopgraph("serve", "--port", "1")

    line = _assert_one_error_line(run, "error: SHOPGRAPH_DATABASE_URL")
    assert "run `shopgraph migrate`" in line
    assert "Uvicorn running" not in run.stdout + run.stderr


def test_export_schema_writes_the_sdl(shopgraph: Shopgraph) -> None:
    target = shopgraph.workdir / "exported.graphql"

    run = shopgraph("export-schema", str(target))

    assert run.returncode == 0, run.stderr
    assert target.read_text(encoding="utf-8") == build_schema().as_str() + "\n"


def test_export_schema_to_an_unwritable_path_exits_with_one_line(shopgraph: Shopgraph) -> None:
    target = shopgraph.workdir / "missing-dir" / "schema.graphql"

    run = shopgraph("export-schema", str(target))

    _assert_one_error_line(run, f"error: cannot write {target}")


def test_seed_refuses_a_negative_product_count(shopgraph: Shopgraph) -> None:
    run = shopgraph("seed", "--products", "-1")

    # Typer may draw the usage error in a box; read it as plain words.
    words = " ".join(run.stderr.replace("│", " ").split())
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "Invalid value for '--products'" in words
    assert "greater than or equal to 0" in words or "0<=x" in words
    assert not (shopgraph.workdir / "cli.db").exists()
