"""Every non-public SQLAlchemy name the fast read path uses, in one place.

`fast_reads` runs loader SELECTs on the pooled asyncpg connection instead of through
SQLAlchemy's execution machinery, for a fraction of SQLAlchemy's CPU per statement and
identical results. To give identical results it reuses SQLAlchemy's own pieces: its
statement cache key, its PostgreSQL compiler, its bind and result processors, its row
metadata and rows, and its pool's invalidation. Those are not public API; each is
wrapped here by one small function or alias, checked on SQLAlchemy 2.1.9, and
`pyproject.toml` pins the range (`>=2.1.9,<2.2`) that `Database.from_settings` checks
at start-up through `app.engine.compat.check_installed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeAlias, TypeVar, cast

from sqlalchemy import BinaryExpression, BindParameter, CacheKey, Row, Select
from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.sql.type_api import _BindProcessorType, _ResultProcessorType
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import greenlet_spawn

_T = TypeVar("_T")

# The compiler class of the postgresql+asyncpg dialect. fast_reads subclasses it and
# defines `visit_in_op_binary`, the method SQLCompiler dispatches `x IN y` to by name.
PostgresCompiler: TypeAlias = PGCompiler_asyncpg
# The protocol SQLAlchemy's operator functions satisfy (compiler visitor signatures).
Operator: TypeAlias = OperatorType
# What a CursorResult gives its rows as their metadata (keys and column objects).
RowMetadata: TypeAlias = SimpleResultMetaData
# A type's conversion of a Python value for the driver, and of a driver value for Python.
BindProcessor: TypeAlias = _BindProcessorType[Any]
ResultProcessor: TypeAlias = _ResultProcessorType[Any]


class ResultColumn(NamedTuple):
    """One selected column as the compiler records it."""

    key: str  # the name rows answer to
    type: TypeEngine[Any]
    objects: tuple[Any, ...]  # the column objects and other keys that name it


def cache_key_of(stmt: Select[Any]) -> CacheKey | None:
    """The statement's compilation cache key, memoized on it (wraps `_generate_cache_key`)."""
    return stmt._generate_cache_key()


def is_tuple_type(type_: TypeEngine[Any]) -> bool:
    """Whether values of this type are tuples, as in `tuple_(a, b).in_(...)` (`_is_tuple_type`)."""
    return type_._is_tuple_type


def clone_bind(bind: BindParameter[_T]) -> BindParameter[_T]:
    """A copy of a bind that keeps its key and cache-key link (`_clone(maintain_key=True)`)."""
    return bind._clone(maintain_key=True)


def generic_binary(
    compiler: SQLCompiler, binary: BinaryExpression[Any], opstring: str, **kw: Any
) -> str:
    """The compiler's default rendering of `left <opstring> right` (`_generate_generic_binary`)."""
    rendered: str = compiler._generate_generic_binary(binary, opstring, **kw)
    return rendered


def result_columns(compiled: SQLCompiler) -> list[ResultColumn]:
    """The selected columns in order (wraps `_result_columns`)."""
    return [
        ResultColumn(column.keyname, column.type, tuple(column.objects))
        for column in compiled._result_columns
    ]


def bind_processors(compiled: SQLCompiler) -> dict[str, BindProcessor]:
    """Bind processors by bind name, for the binds that have one (`_bind_processors`)."""
    # Only tuple-typed binds map to a sequence of processors, and those are IN lists,
    # which the fast path leaves to SQLAlchemy.
    return cast("dict[str, BindProcessor]", compiled._bind_processors)


def result_processor(
    type_: TypeEngine[Any], dialect: Dialect, driver_type: Any
) -> ResultProcessor | None:
    """The dialect's processor for values of a column the driver reports as `driver_type`."""
    # `_cached_result_processor` is what SQLAlchemy's own cursor results use.
    return type_._cached_result_processor(dialect, driver_type)


def row_metadata(keys: Sequence[str], objects: Sequence[tuple[Any, ...]]) -> RowMetadata:
    """Row metadata answering to `keys` and, in `_mapping`, to `objects` (SimpleResultMetaData)."""
    return SimpleResultMetaData(keys, extra=objects)


def make_rows(
    metadata: RowMetadata,
    processors: Sequence[ResultProcessor | None] | None,
    records: Iterable[Sequence[Any]],
) -> list[Row[Any]]:
    """Rows as a CursorResult builds them (Row's constructor and `_key_to_index`)."""
    key_to_index = metadata._key_to_index
    return [Row(metadata, processors, key_to_index, record) for record in records]


def invalidate_pool(pool: Pool, connection: PoolProxiedConnection, error: BaseException) -> None:
    """Invalidate a lost connection and retire the pool's older ones (`Pool._invalidate`)."""
    pool._invalidate(connection, error)


async def in_greenlet(fn: Callable[..., _T], *args: Any) -> _T:
    """Run a sync pool call that may await the driver (wraps `sqlalchemy.util.greenlet_spawn`)."""
    return await greenlet_spawn(fn, *args)


__all__ = [
    "BindProcessor",
    "Operator",
    "PostgresCompiler",
    "ResultColumn",
    "ResultProcessor",
    "RowMetadata",
    "bind_processors",
    "cache_key_of",
    "clone_bind",
    "generic_binary",
    "in_greenlet",
    "invalidate_pool",
    "is_tuple_type",
    "make_rows",
    "result_columns",
    "result_processor",
    "row_metadata",
]
