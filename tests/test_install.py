"""The wheel, installed in a fresh venv, migrates, seeds and serves from any directory."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
# What setuptools reads to build the wheel; the rest of the checkout stays out of the build.
BUILD_INPUTS = ("pyproject.toml", "README.md", "app")
PACKAGE_DATA = ("app/db/migrations", "app/static/graphiql")
COMMAND_TIMEOUT_SECONDS = 120
SERVE_WAIT_SECONDS = 60
PRODUCTS = 20
# Importing this instead of the installed package fails every command loudly.
DECOY = 'raise ImportError("imported app/ from the working directory, not the installed wheel")\n'


@dataclass(frozen=True)
class Installed:
    """A venv holding the built wheel, and an unrelated directory to run it from."""

    wheel: Path
    venv: Path
    workdir: Path

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def shopgraph(self) -> Path:
        """The console script the wheel installed."""
        return self.venv / "bin" / "shopgraph"

    def env(self) -> dict[str, str]:
        """The caller's environment without shopgraph settings or Python path overrides."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("SHOPGRAPH_")
            and name not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
        }
        env["SHOPGRAPH_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.workdir / 'shop.db'}"
        return env

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run a command in the workdir and wait for it."""
        return subprocess.run(
            [str(arg) for arg in args],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )


def _checked(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, f"{completed.args}\n{completed.stdout}\n{completed.stderr}"
    return completed


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = CHECKOUT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    dist = tmp / "dist"
    _checked(
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    )
    [wheel] = dist.glob("shopgraph-*.whl")
    return wheel


def _dependency_paths() -> list[str]:
    # The test runner's site-packages hold the dependencies; the checkout itself is on
    # sys.path only through its editable-install hook there, which a path in a .pth file
    # does not run.
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from this checkout, installed alone in a new venv."""
    tmp = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(tmp)
    venv = tmp / "venv"
    _checked(
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", venv],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    )
    workdir = tmp / "elsewhere"
    (workdir / "app").mkdir(parents=True)
    (workdir / "app" / "__init__.py").write_text(DECOY, encoding="utf-8")
    made = Installed(wheel, venv, workdir)
    site_packages = made.run(
        made.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    ).stdout.strip()
    (Path(site_packages) / "shopgraph-test-dependencies.pth").write_text(
        "\n".join(_dependency_paths()) + "\n", encoding="utf-8"
    )
    # pip comes from the dependencies; --ignore-installed: the checkout's editable
    # install is visible there and must be neither reused nor uninstalled.
    _checked(
        made.run(
            made.python,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            "--quiet",
            wheel,
        )
    )
    return made


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(installed: Installed) -> Iterator[str]:
    """`shopgraph serve` of the installed wheel on a free loopback port; its base URL."""
    _checked(installed.run(installed.shopgraph, "migrate"))
    _checked(installed.run(installed.shopgraph, "seed", "--products", str(PRODUCTS)))
    port = _free_port()
    log = installed.workdir / "serve.log"
    with log.open("w", encoding="utf-8") as output:
        server = subprocess.Popen(
            [str(installed.shopgraph), "serve", "--port", str(port)],
            cwd=installed.workdir,
            env=installed.env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(server, base_url, log)
        yield base_url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=COMMAND_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    # A deadline to give up waiting, not an assertion on how fast it starts.
    deadline = time.monotonic() + SERVE_WAIT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"{base_url}/health", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"serve did not answer within {SERVE_WAIT_SECONDS}s:\n{log.read_text()}")


def test_the_wheel_ships_the_migrations_and_graphiql(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = set(wheel.namelist())

    for folder in PACKAGE_DATA:
        files = {
            path.relative_to(CHECKOUT).as_posix()
            for path in (CHECKOUT / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert files, folder
        assert files <= shipped, sorted(files - shipped)
    assert not any(name.startswith(("tests/", "bench/", "migrations/")) for name in shipped)


def test_the_installed_package_is_imported_not_the_checkout(installed: Installed) -> None:
    # -P: as the console script, do not put the working directory (with its decoy) first.
    where = _checked(
        installed.run(
            installed.python,
            "-P",
            "-c",
            "import app, app.db.checks as c; print(app.__file__); print(c.MIGRATIONS)",
        )
    ).stdout.split()

    for path in where:
        assert Path(path).is_relative_to(installed.venv), path
        assert not Path(path).is_relative_to(CHECKOUT), path


def test_installed_shopgraph_migrates_seeds_and_serves(installed: Installed, served: str) -> None:
    answer = httpx.post(
        f"{served}/graphql",
        json={"query": "{ products(first: 2) { totalCount } }"},
        headers={"Accept": "application/json"},
        timeout=30.0,
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    assert body["data"] == {"products": {"totalCount": PRODUCTS}}

    page = httpx.get(f"{served}/graphql", headers={"Accept": "text/html"}, timeout=30.0)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/static/graphiql/[^"]+)"', page.text)
    assert len(assets) >= 2, page.text
    for asset in assets:
        response = httpx.get(f"{served}{asset}", timeout=30.0)
        assert response.status_code == 200, asset
        assert response.content, asset
