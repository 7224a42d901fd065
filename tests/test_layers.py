"""The import directions DESIGN.md draws, checked on the source: a layer that reaches into
another fails here, not in review."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# package -> the app packages (besides itself) it may import
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "platform": {"app.engine", "app.settings"},
    # the installed-version check lives with the engine's compat module; migrations read models
    "db": {"app.settings", "app.engine.compat", "app.models"},
    "http": {"app.engine", "app.platform", "app.settings"},
}


def _app_imports(path: Path) -> set[str]:
    """The `app...` modules one source file imports (at any depth of the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("app"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if module == "app" or module.startswith("app."):
                found.add(module)
    return found


def _outside(module: str, package: str, allowed: set[str]) -> bool:
    if module == f"app.{package}" or module.startswith(f"app.{package}."):
        return False
    return not any(module == ok or module.startswith(f"{ok}.") for ok in allowed)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_layer_imports_only_what_it_may(package: str) -> None:
    allowed = ALLOWED[package]
    offending = {
        f"{path.relative_to(APP)}: {module}"
        for path in sorted((APP / package).rglob("*.py"))
        for module in _app_imports(path)
        if _outside(module, package, allowed)
    }

    assert not offending, sorted(offending)


def test_the_http_layer_does_not_load_the_data_layer() -> None:
    # Transitively too: importing every app.http module pulls in neither app.db nor services.
    modules = sorted(f"app.http.{path.stem}" for path in (APP / "http").glob("[!_]*.py"))
    script = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['app', 'db'], ['app', 'services'], ['app', 'models'], ['app', 'loaders'])))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )

    assert run.stdout.strip() == "[]", run.stdout
