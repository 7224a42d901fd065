"""Private dependency names stay in the two compat modules, and start-up checks their versions.

`check_installed` runs for real: the installed versions and shopgraph's declared ranges
come from importlib.metadata, which here also finds a directory of stand-in
distributions (`*.dist-info` with only METADATA) put first on `sys.path`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from app.db import Database
from app.engine.compat import IncompatibleDependency, check_installed, declared_ranges
from tests.conftest import Backend

APP = Path(__file__).resolve().parents[1] / "app"
INSTALLED_SQLALCHEMY = metadata.version("sqlalchemy")
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/never_connected"


class FakeSite:
    """A sys.path entry whose distributions shadow the installed ones of the same name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def install(self, name: str, version: str, requires: Sequence[str] = ()) -> None:
        """Make `name` look installed at `version`, declaring `requires`."""
        info = self.root / f"{name}-{version}.dist-info"
        info.mkdir()
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {requirement}" for requirement in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """Stand-in distributions, found before the real ones for this test only."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return FakeSite(tmp_path)


def _refusal(names: list[str]) -> str:
    with pytest.raises(IncompatibleDependency) as raised:
        check_installed(names)
    return str(raised.value)


# --- check_installed -----------------------------------------------------------------------------


def test_the_installed_sqlalchemy_is_inside_the_pinned_range() -> None:
    pinned = declared_ranges()["sqlalchemy"]

    assert Version(INSTALLED_SQLALCHEMY) in pinned.specifier
    check_installed(["sqlalchemy", "SQLAlchemy"])


@pytest.mark.parametrize("version", ["2.0.36", "2.2.0", "3.0.0b1"])
def test_a_sqlalchemy_outside_the_pinned_range_is_refused_with_what_to_install(
    site: FakeSite, version: str
) -> None:
    pinned = declared_ranges()["sqlalchemy"]
    site.install("sqlalchemy", version)

    message = _refusal(["sqlalchemy"])

    assert message == (
        f"sqlalchemy {version} is installed, but shopgraph was tested with "
        f"{pinned.specifier}: pip install '{pinned}'"
    )
    assert "2.1.9" in message and "pip install 'sqlalchemy[asyncio]" in message


def test_a_declared_range_that_excludes_the_installed_version_is_refused(site: FakeSite) -> None:
    site.install("shopgraph", "0.0.1", ["sqlalchemy[asyncio]<2.1", 'pytest<1; extra == "dev"'])

    message = _refusal(["sqlalchemy"])

    assert message == (
        f"sqlalchemy {INSTALLED_SQLALCHEMY} is installed, but shopgraph was tested with "
        "<2.1: pip install 'sqlalchemy[asyncio]<2.1'"
    )
    check_installed(["pytest"])  # an extra's requirement is not the app's own


def test_a_declared_dependency_that_is_not_installed_is_refused(site: FakeSite) -> None:
    site.install("shopgraph", "0.0.1", ["shopgraph-absent-dependency>=1.2"])

    assert _refusal(["shopgraph-absent-dependency"]) == (
        "shopgraph-absent-dependency is not installed: "
        "pip install 'shopgraph-absent-dependency>=1.2'"
    )


def test_a_postgres_database_is_refused_on_an_unpinned_sqlalchemy(site: FakeSite) -> None:
    postgres = Backend("postgres", POSTGRES_URL, None).settings()
    sqlite = Backend("sqlite", "sqlite+aiosqlite:///:memory:", None).settings()
    assert Database.from_settings(postgres).fast_reads is not None  # the real one passes
    site.install("sqlalchemy", "2.0.36")

    with pytest.raises(IncompatibleDependency, match=r"sqlalchemy 2\.0\.36 is installed"):
        Database.from_settings(postgres)
    # SQLite has no fast reads, so nothing private of SQLAlchemy runs.
    assert Database.from_settings(sqlite).fast_reads is None


# --- private names in the source -----------------------------------------------------------------

SQLALCHEMY_COMPAT = APP / "db" / "compat.py"
ENGINE_COMPAT = APP / "engine" / "compat.py"
PRIVATE_SQLALCHEMY_MODULES = (
    "sqlalchemy.engine.result",
    "sqlalchemy.util",
    "sqlalchemy.dialects.postgresql.asyncpg",
)
PRIVATE_ENGINE_MODULES = (
    "strawberry.schema.schema",
    "strawberry.execution",
    "graphql.execution.collect_fields",
    "graphql.execution.executor",
)


def _within(name: str, modules: Sequence[str]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


def _imported(source: str) -> Iterator[tuple[int, str]]:
    """Each module and `module.name` the source imports (or names as a string), with its line."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value  # importlib.import_module("...") and the like


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_sqlalchemy(source: str) -> list[str]:
    """The private SQLAlchemy modules and names a module's source imports."""
    return [
        f"{line}: {name}"
        for line, name in _imported(source)
        if name.split(".")[0] == "sqlalchemy"
        and (
            any(map(_is_private, name.split(".")[1:])) or _within(name, PRIVATE_SQLALCHEMY_MODULES)
        )
    ]


def private_engine(source: str) -> list[str]:
    """The private Strawberry and graphql-core modules and names a module's source imports."""
    return [
        f"{line}: {name}"
        for line, name in _imported(source)
        if _within(name, PRIVATE_ENGINE_MODULES)
    ]


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy.util import greenlet_spawn",
        "import sqlalchemy.engine.result",
        "from sqlalchemy import util",
        "from sqlalchemy.dialects.postgresql import asyncpg",
        "from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg as C",
        "from sqlalchemy.sql.type_api import _BindProcessorType",
        "from sqlalchemy.engine._row_cy import BaseRow",
        "if TYPE_CHECKING:\n    from sqlalchemy.engine.result import SimpleResultMetaData",
        "importlib.import_module('sqlalchemy.util')",
    ],
)
def test_the_sqlalchemy_check_sees_private_imports(source: str) -> None:
    assert private_sqlalchemy(source)


@pytest.mark.parametrize(
    "source",
    [
        "from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext",
        "from strawberry.execution import optimized_is_awaitable",
        "from strawberry.schema import schema",
        "from graphql.execution import collect_fields",
        "from graphql.execution.collect_fields import FieldDetails",
        "import graphql.execution.executor",
    ],
)
def test_the_engine_check_sees_private_imports(source: str) -> None:
    assert private_engine(source)


def test_the_checks_let_public_imports_pass() -> None:
    source = "\n".join(
        [
            "from sqlalchemy import Row, __version__, select",
            "from sqlalchemy.dialects.postgresql import ARRAY",
            "from sqlalchemy.ext.asyncio import AsyncEngine",
            "from graphql.execution import VariableValues, get_argument_values",
            "from strawberry.schema import Schema",
        ]
    )

    assert private_sqlalchemy(source) == []
    assert private_engine(source) == []


def _app_modules() -> dict[Path, str]:
    modules = {path: path.read_text() for path in sorted(APP.rglob("*.py"))}
    # The checks must be reading the real tree, compat modules included.
    assert private_sqlalchemy(modules[SQLALCHEMY_COMPAT])
    assert private_engine(modules[ENGINE_COMPAT])
    assert APP / "db" / "fast_reads.py" in modules
    return modules


def test_only_the_db_compat_module_imports_private_sqlalchemy_names() -> None:
    found = {
        str(path.relative_to(APP)): names
        for path, source in _app_modules().items()
        if path != SQLALCHEMY_COMPAT and (names := private_sqlalchemy(source))
    }

    assert found == {}


def test_only_the_engine_compat_module_imports_private_strawberry_and_graphql_names() -> None:
    found = {
        str(path.relative_to(APP)): names
        for path, source in _app_modules().items()
        if path != ENGINE_COMPAT and (names := private_engine(source))
    }

    assert found == {}


def test_fast_reads_touches_no_private_attribute_but_its_own() -> None:
    # Attribute access is not an import: check the one module that used SQLAlchemy's.
    tree = ast.parse((APP / "db" / "fast_reads.py").read_text())
    private = [
        f"{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and _is_private(node.attr)
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    private += [
        f"{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"getattr", "setattr", "hasattr"}
    ]

    assert private == []
