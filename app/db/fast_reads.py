"""Loader reads on PostgreSQL without SQLAlchemy's per-statement machinery.

Executing a Core statement through SQLAlchemy costs several times the CPU of running
the same SQL on asyncpg: an execution context, result metadata and cursor adaption per
call, and a greenlet switch for each step. Loader batches are plain SELECTs on an
AUTOCOMMIT connection, so `FastReader` compiles each statement shape once (keyed by
SQLAlchemy's own cache key), runs the SQL on the pooled connection's asyncpg driver
and builds ordinary `Row`s with SQLAlchemy's result processors: callers see the same
rows, values and types as before. The SQLAlchemy internals this needs are wrapped in
`app.db.compat`; this module uses only those and SQLAlchemy's public API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BinaryExpression, BindParameter, CacheKey, Row, Select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from app.db.compat import (
    BindProcessor,
    Operator,
    PostgresCompiler,
    ResultProcessor,
    RowMetadata,
    bind_processors,
    cache_key_of,
    clone_bind,
    generic_binary,
    in_greenlet,
    invalidate_pool,
    is_tuple_type,
    make_rows,
    result_columns,
    result_processor,
    row_metadata,
)

# Shapes are few (loader statements times filter/sort/cursor combinations); the cap only
# guards against unbounded growth, dropping the oldest shape when it is reached.
MAX_SHAPES = 1000


class _AnyArrayCompiler(PostgresCompiler):
    """Renders `x IN (<list>)` as `x = ANY($n::type[])` with the list as one array parameter.

    SQLAlchemy expands an IN list into one placeholder per value, so every batch size is a
    new SQL text and a new server-side prepare; an array keeps the text, and asyncpg's
    per-connection prepared statement cache, stable. The semantics are the same (NULLs
    and empty lists included).
    """

    def visit_in_op_binary(
        self, binary: BinaryExpression[Any], operator: Operator, **kw: Any
    ) -> str:
        right = binary.right
        if isinstance(right, BindParameter) and right.expanding and not is_tuple_type(right.type):
            # A clone keeps the key and the cache-key link, so construct_params finds its value.
            array = clone_bind(right)
            array.expanding = False
            array.type = ARRAY(right.type)
            return f"{self.process(binary.left, **kw)} = ANY ({self.process(array, **kw)})"
        return generic_binary(self, binary, " IN ", **kw)


@dataclass(slots=True)
class _Shape:
    """One compiled statement shape: its SQL, how to order its parameters, how to read its rows."""

    compiled: _AnyArrayCompiler
    sql: str
    # Bind names in $1, $2... order, each with its type's bind processor (if any).
    positions: tuple[tuple[str, BindProcessor | None], ...]
    # Known after the first run: result processors depend on the column types the server reports.
    metadata: RowMetadata | None = None
    processors: list[ResultProcessor | None] | None = None


class FastReader:
    """Runs loader SELECTs on the read engine's pooled asyncpg connections."""

    def __init__(self, engine: AsyncEngine, *, on_statement: Callable[[str], None]) -> None:
        self._engine = engine
        self._on_statement = on_statement
        # By SQLAlchemy cache key; None marks a shape the fast path leaves to SQLAlchemy.
        self._shapes: dict[Any, _Shape | None] = {}

    async def fetch(
        self, stmt: Select[Any], parameters: dict[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """Run one read statement on its own pooled connection, outside any transaction.

        `parameters` are values for the statement's `bindparam`s: a statement built once
        and run with new values has its cache key made once (SQLAlchemy memoizes it).
        """
        cache_key = cache_key_of(stmt)
        if cache_key is None:  # a construct SQLAlchemy itself cannot cache
            return await self._fetch_with_sqlalchemy(stmt, parameters)
        try:
            shape = self._shapes[cache_key.key]
        except KeyError:
            shape = await self._compile(stmt, cache_key)
        if shape is None:
            return await self._fetch_with_sqlalchemy(stmt, parameters)
        values = shape.compiled.construct_params(
            # SQLAlchemy 2.1 keeps values given to .params() with the key.
            {**(cache_key.params or {}), **(parameters or {})},
            extracted_parameters=cache_key.bindparams,
            escape_names=False,
        )
        args = [
            values[name] if process is None else process(values[name])
            for name, process in shape.positions
        ]
        raw = await self._engine.raw_connection()
        try:
            driver: Any = raw.driver_connection  # an asyncpg.Connection
            self._on_statement(shape.sql)
            try:
                if shape.metadata is None:
                    records = await self._first_run(driver, shape, args)
                else:
                    records = await driver.fetch(shape.sql, *args)
            except BaseException as error:
                await self._after_error(raw, driver, error)
                raise
        finally:
            # Checkin may close a connection, which awaits through SQLAlchemy's greenlet bridge.
            await in_greenlet(raw.close)
        assert shape.metadata is not None
        return make_rows(shape.metadata, shape.processors, records)

    async def _after_error(
        self, raw: PoolProxiedConnection, driver: Any, error: BaseException
    ) -> None:
        # As SQLAlchemy does on its own path: a lost connection also retires the pool's older
        # connections (a restarted server dropped them all), and a connection whose statement
        # was cancelled is in an unknown state, so it is closed rather than reused.
        if driver.is_closed():
            await in_greenlet(invalidate_pool, self._engine.sync_engine.pool, raw, error)
        elif not isinstance(error, Exception):
            await in_greenlet(raw.invalidate, error)

    async def _first_run(self, driver: Any, shape: _Shape, args: list[Any]) -> list[Any]:
        # Result processors depend on the column types the server reports (Numeric reads
        # float and numeric columns differently), which a prepared statement tells. Later
        # runs use driver.fetch and asyncpg's own statement cache.
        prepared = await driver.prepare(shape.sql)
        oids = [attribute.type.oid for attribute in prepared.get_attributes()]
        columns = result_columns(shape.compiled)
        processors = [
            result_processor(column.type, self._engine.dialect, oid)
            for column, oid in zip(columns, oids, strict=True)
        ]
        shape.processors = processors if any(processors) else None
        # Rows answer to the names SQLAlchemy gives them and, in _mapping, to the selected
        # column objects; other string aliases could collide between columns, so they are left out.
        shape.metadata = row_metadata(
            [column.key for column in columns],
            [
                tuple(key for key in column.objects if not isinstance(key, str))
                for column in columns
            ],
        )
        records: list[Any] = await prepared.fetch(*args)
        return records

    async def _compile(self, stmt: Select[Any], cache_key: CacheKey) -> _Shape | None:
        if self._engine.dialect.server_version_info is None:
            # The dialect learns the server's version (which can change the SQL) on first connect.
            async with self._engine.connect():
                pass
        compiled = _AnyArrayCompiler(self._engine.dialect, stmt, cache_key=cache_key)
        keys = [column.key for column in result_columns(compiled)]
        shape = None
        if not (
            compiled.post_compile_params  # e.g. a tuple IN list
            or compiled.literal_execute_params
            or len(set(keys)) != len(keys)  # duplicate names: SQLAlchemy's rows flag them
        ):
            processors = bind_processors(compiled)
            shape = _Shape(
                compiled=compiled,
                sql=compiled.string,
                positions=tuple(
                    (name, processors.get(name)) for name in compiled.positiontup or ()
                ),
            )
        if len(self._shapes) >= MAX_SHAPES:
            del self._shapes[next(iter(self._shapes))]
        self._shapes[cache_key.key] = shape
        return shape

    async def _fetch_with_sqlalchemy(
        self, stmt: Select[Any], parameters: dict[str, Any] | None
    ) -> Sequence[Row[Any]]:
        async with self._engine.connect() as connection:
            result = await connection.execute(stmt, parameters)
            rows: Sequence[Row[Any]] = result.all()
            return rows
