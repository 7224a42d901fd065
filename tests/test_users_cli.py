"""`shopgraph users create`, run as operators run it: a subprocess with only SHOPGRAPH_* settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.test_accounts import LOGIN, ME, Callers, running_app

SHOPGRAPH = Path(sys.executable).parent / "shopgraph"
PASSWORD = "violet-harbor-lantern-42"


class Shell:
    """Runs `shopgraph ...` in a directory with its own migrated SQLite database."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.database_url = f"sqlite+aiosqlite:///{workdir / 'users.db'}"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one command; stdout and stderr are captured as text."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGRAPH_")}
        env["SHOPGRAPH_DATABASE_URL"] = self.database_url
        return subprocess.run(
            [str(SHOPGRAPH), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """An operator's shell next to a migrated database."""
    made = Shell(tmp_path_factory.mktemp("users-cli"))
    assert made("migrate").returncode == 0
    return made


def one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command wrote to stderr."""
    assert run.returncode != 0, run
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    return lines[0]


async def test_the_first_admin_is_created_and_can_sign_in(shell: Shell) -> None:
    run = shell(
        "users",
        "create",
        "--email",
        "Boss@Shop.Example.com",
        "--password",
        PASSWORD,
        "--role",
        "admin",
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith("created admin boss@shop.example.com (id ")
    assert PASSWORD not in run.stdout + run.stderr
    backend = Backend("sqlite", shell.database_url, None)
    async for app in running_app(backend):
        callers = Callers(app)
        try:
            signed_in = await callers().query(
                LOGIN, {"input": {"email": "boss@shop.example.com", "password": PASSWORD}}
            )
            me = await callers(signed_in["login"]["accessToken"]).query(ME)
        finally:
            await callers.aclose()
    assert me["me"]["role"] == "ADMIN"
    assert me["me"]["fullName"] == "Boss"


def test_a_taken_email_is_refused_in_one_line(shell: Shell) -> None:
    first = shell(
        "users",
        "create",
        "--email",
        "staff@shop.example.com",
        "--password",
        PASSWORD,
        "--role",
        "staff",
    )
    again = shell("users", "create", "--email", "STAFF@shop.example.com", "--password", PASSWORD)

    assert first.returncode == 0, first.stderr
    assert one_error_line(again) == "error: --email: An account with this email already exists"


@pytest.mark.parametrize(
    ("args", "starts_with"),
    [
        (["--email", "weak@shop.example.com", "--password", "password1234"], "error: --password: "),
        (["--email", "not-an-email", "--password", PASSWORD], "error: --email: "),
        (
            ["--email", "x@shop.example.com", "--password", PASSWORD, "--role", "boss"],
            "error: Invalid value for '--role'",
        ),
        (["--email", "x@shop.example.com"], "error: Missing option '--password'"),
    ],
)
def test_bad_input_is_one_clear_line(shell: Shell, args: list[str], starts_with: str) -> None:
    run = shell("users", "create", *args)

    assert one_error_line(run).startswith(starts_with)
