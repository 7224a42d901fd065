"""Imports go one way, as DESIGN.md draws the layers: services speak the domain, schema types hold types."""

from __future__ import annotations

import ast
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
