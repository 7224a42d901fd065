"""The base of every loader: one short read connection per batch, results in key order."""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import Future
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import BindParameter, Row, Select, Table, bindparam

from app.db import Database
from app.loaders.cached import EntityCache, ReadTags, load_through_cache
from app.models import Base

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# The batch's keys, for statements built once and run with {"keys": [...]}: building a
# statement (and its cache key) costs more CPU than PostgreSQL spends running it.
KEYS: BindParameter[Any] = bindparam("keys", expanding=True)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a model (loaders read with Core, not the ORM)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class BatchLoader(DataLoader[K, V]):
    """A DataLoader that reads through `db`; subclasses implement `load_batch` and `tags`.

    A subclass that sets `cached_as` (its name in cache keys) reads through the entity
    cache (app/loaders/cached.py) when it has one and shows the public view.
    """

    cached_as: ClassVar[str | None] = None

    def __init__(
        self,
        db: Database,
        *,
        include_unpublished: bool = False,
        entity_cache: EntityCache | None = None,
        read_tags: ReadTags | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.include_unpublished = include_unpublished
        # Staff see unpublished rows: their reads must neither fill nor read the public cache.
        self.entity_cache = None if include_unpublished or self.cached_as is None else entity_cache
        self.read_tags = read_tags

    def load(self, key: K) -> Future[V]:
        """One key's value, in a future of the caller's own.

        DataLoader hands every caller of a key the same cached future, and cancelling a
        task that awaits a future cancels the future itself: graphql-core cancels the
        sibling fields of a failed non-null field, which would cancel the load for every
        other field waiting on that key. A shield per caller keeps the shared load alive.
        """
        shared = super().load(key)
        return shared if shared.done() else asyncio.shield(shared)

    def load_many(self, keys: Iterable[K]) -> Future[list[V]]:
        """Values for many keys: the same loads, without a callback per key.

        DataLoader gathers one future per key, so each value costs a scheduled callback
        when its batch resolves; a relation level of a listing asks for ~100 keys. Keys
        loaded together resolve together, so waiting on the futures in turn wakes up
        about once per batch.
        """
        # The shared futures themselves: nothing outside this task awaits them.
        load = super().load
        return asyncio.ensure_future(self._load_all([load(key) for key in keys]))

    async def _load_all(self, futures: list[Future[V]]) -> list[V]:
        for future in futures:
            if not future.done():
                with contextlib.suppress(Exception):  # raised below, in key order
                    await future
        # Every failure is read (as gather would), so none is reported as unretrieved.
        errors = [error for future in futures if (error := future.exception()) is not None]
        if errors:
            raise errors[0]
        return [future.result() for future in futures]

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        """Called by DataLoader with the keys gathered in one tick."""
        cache = self.entity_cache
        if cache is not None:
            assert self.cached_as is not None
            values: list[V] = await load_through_cache(self, self.cached_as, keys, cache)
        else:
            values = await self.load_batch(keys)
        read = self.read_tags
        if read is not None:
            for key, value in zip(keys, values, strict=True):
                tags = self.tags(key, value)
                if tags is None:
                    read.untaggable = True
                else:
                    read.tags.update(tags)
        return values

    def tags(self, key: K, value: V) -> Sequence[str] | None:
        """The cache tags of what `key` loaded (None: data no change event names)."""
        return None

    async def load_batch(self, keys: list[K]) -> list[V]:
        """Fetch values for `keys`, in the same order."""
        raise NotImplementedError

    async def fetch(
        self, stmt: Select[Any], parameters: dict[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """Run one read statement (values for its `bindparam`s given) on a short connection."""
        # On PostgreSQL: the same rows for a fraction of SQLAlchemy's CPU (app.db.fast_reads).
        if self.db.fast_reads is not None:
            return await self.db.fast_reads.fetch(stmt, parameters)
        async with self.db.read() as connection:
            result = await connection.execute(stmt, parameters)
            rows: Sequence[Row[Any]] = result.all()
            return rows


def by_key(rows: Iterable[Row[Any]], keys: list[K], column: str) -> list[Row[Any] | None]:
    """Rows matched to keys by a unique column; None where absent."""
    found = {getattr(row, column): row for row in rows}
    return [found.get(key) for key in keys]


def grouped_by_key(rows: Iterable[Row[Any]], keys: list[K], column: str) -> list[list[Row[Any]]]:
    """Rows grouped under each key by a non-unique column; [] where absent."""
    groups: dict[Any, list[Row[Any]]] = {key: [] for key in keys}
    for row in rows:
        groups[getattr(row, column)].append(row)
    return [groups[key] for key in keys]
