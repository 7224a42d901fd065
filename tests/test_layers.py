"""The import directions DESIGN.md draws, checked on the source: a layer that reaches into
another fails here, not in review. Services speak the domain, schema modules hold types,
and the GraphQL transport never loads the data layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# What a layer must not import (a module or any module below it).
FORBIDDEN = {
    "services": ("strawberry", "graphql", "app.context", "app.http", "app.schema", "app.resolvers"),
    # schema/__init__.py and schema/root.py build the Schema from the resolvers; the type
    # modules never import them.
    "schema": ("app.resolvers", "app.services", "app.http"),
    # platform is the leaf the others use: app.engine and app.settings only.
    "platform": (
        "app.cli",
        "app.context",
        "app.db",
        "app.http",
        "app.loaders",
        "app.main",
        "app.models",
        "app.resolvers",
        "app.schema",
        "app.services",
    ),
}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, also inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _modules(layer: str) -> list[Path]:
    paths = sorted((APP / layer).rglob("*.py"))
    builders = {"__init__.py", "root.py"}
    return [p for p in paths if not (layer == "schema" and p.name in builders)]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    # given every module of the layer
    modules = _modules(layer)
    assert modules, layer

    # when its imports are read
    leaks = [
        f"{path.relative_to(APP.parent)} imports {name}"
        for path in modules
        for name in sorted(_imports(path))
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN[layer])
    ]

    # then none reaches a layer above
    assert leaks == []


def test_the_import_reader_sees_imports() -> None:
    # A reader that saw nothing would pass the test above whatever the code imports.
    assert {"app.db", "app.platform.errors"} <= _imports(APP / "services" / "partners.py")


# package -> the app packages (besides itself) it may import
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "platform": {"app.engine", "app.settings"},
    # the installed-version check lives with the engine's compat module; migrations read models;
    # an outage is told to clients as the platform's ServiceUnavailable
    "db": {"app.settings", "app.engine.compat", "app.models", "app.platform"},
    # the OAuth endpoint speaks the partner service's types; the GraphQL transport does not
    "http": {"app.engine", "app.platform", "app.settings", "app.services.partners"},
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
    # Transitively too: the GraphQL transport's modules pull in neither app.db nor services.
    modules = sorted(
        f"app.http.{path.stem}" for path in (APP / "http").glob("[!_]*.py") if path.stem != "oauth"
    )
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
