"""The entity cache's value format: loader values as compact JSON, read back as the same Rows.

An entry is one JSON value (no pickle: what the cache holds is data, never code):

- `null` (no row) or an integer (a count), as themselves;
- `[shape, "o", [row]]`, `[shape, "l", [row, ...]]` or `[shape, "p", [row, ...], has_next,
  has_previous]`: a row, a list of rows, a page of rows; a row is the array of its values.

`shape` names the columns and the ones holding datetimes (`"id,slug,created_at|2"`). Rows
of one statement share one shape, and the row metadata of a shape is built once per process
and shared by every row decoded with it, as SQLAlchemy's own results share theirs: decoding
is one `orjson.loads`, a `fromisoformat` per datetime and one `Row` per row.

Only values that come back from JSON as they went in are stored: None, bool, int, str,
finite float, UTC or naive datetime, and JSON column values (dict, list). Anything else
(a Decimal, an enum, a date) raises TypeError, and the loader's value is served uncached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Row

from app.db.compat import RowMetadata, make_rows, row_metadata
from app.loaders.paging import Page

CODEC_VERSION = "2"  # part of every entity key: a new value format never reads an old one

# Column values JSON returns with their type (JSON column values are JSON already).
_PLAIN: frozenset[type] = frozenset({type(None), bool, int, str, dict, list})
_DATETIME: frozenset[type] = frozenset({type(None), datetime})
_FLOAT: frozenset[type] = frozenset({type(None), int, float})  # a REAL column may hold an int
_UTC_OR_NAIVE: frozenset[Any] = frozenset({None, UTC})
_tzinfo = attrgetter("tzinfo")
_MAX_SHAPES = 1024


class _Shape(NamedTuple):
    """Row metadata for the columns of a shape, their number, and which hold datetimes."""

    metadata: RowMetadata
    width: int
    datetimes: tuple[int, ...]


class _Kinds(NamedTuple):
    """A shape's name, and the columns whose values need a look before they are stored."""

    name: str
    datetimes: tuple[int, ...]
    floats: tuple[int, ...]


_shapes: dict[str, _Shape] = {}


def _shape_name(fields: tuple[str, ...], records: list[tuple[Any, ...]]) -> str:
    """The shape of one statement's rows; TypeError for values JSON would give back changed."""
    if set(map(len, records)) != {len(fields)}:
        raise TypeError("cannot cache rows of different widths together")
    if set(map(type, chain.from_iterable(records))) <= _PLAIN:  # most rows: one pass in C
        return _kinds_of(fields, frozenset()).name
    # Rows of one statement have a few combinations of value types at most (NULL or not).
    kinds = _kinds_of(fields, frozenset({tuple(map(type, record)) for record in records}))
    for index in kinds.datetimes:
        if not set(map(_tzinfo, filter(None, map(itemgetter(index), records)))) <= _UTC_OR_NAIVE:
            raise TypeError(f"cannot cache column {fields[index]}: not UTC datetimes only")
    for index in kinds.floats:
        # Not finite: NaN or infinite (JSON has neither) somewhere in the column.
        if not math.isfinite(sum(filter(None, map(itemgetter(index), records)))):
            raise TypeError(f"cannot cache column {fields[index]}: not finite floats only")
    return kinds.name


@lru_cache(maxsize=_MAX_SHAPES)
def _kinds_of(fields: tuple[str, ...], combinations: frozenset[tuple[type, ...]]) -> _Kinds:
    """What rows with these combinations of value types are stored as (TypeError: not at all)."""
    if any("," in name or "|" in name for name in fields):
        raise TypeError(f"cannot cache columns named {fields!r}")
    columns: list[set[type]] = [set() for _ in fields]
    for types in combinations:
        for column, kind in zip(columns, types, strict=True):
            column.add(kind)
    for name, kinds in zip(fields, columns, strict=True):
        if not (kinds <= _PLAIN or kinds <= _DATETIME or kinds <= _FLOAT):
            names = ", ".join(sorted(kind.__name__ for kind in kinds))
            raise TypeError(f"cannot cache column {name}: {names} values")
    datetimes = tuple(i for i, kinds in enumerate(columns) if datetime in kinds)
    floats = tuple(i for i, kinds in enumerate(columns) if float in kinds)
    return _Kinds(",".join(fields) + "|" + ",".join(map(str, datetimes)), datetimes, floats)


def _shape(name: str) -> _Shape:
    """The shape a name stands for, built on first use (ValueError when malformed)."""
    found = _shapes.get(name)
    if found is not None:
        return found
    columns, separator, indexes = name.partition("|")
    if not separator or not columns:
        raise ValueError(f"not a row shape: {name!r}")
    fields = columns.split(",")
    datetimes = tuple(int(index) for index in indexes.split(",")) if indexes else ()
    if any(not 0 <= index < len(fields) for index in datetimes):
        raise ValueError(f"not a row shape: {name!r}")
    if len(_shapes) >= _MAX_SHAPES:
        del _shapes[next(iter(_shapes))]
    metadata = row_metadata(fields, [() for _ in fields])
    made = _shapes[name] = _Shape(metadata, len(fields), datetimes)
    return made


def _rows_payload(kind: str, rows: Sequence[Row[Any]]) -> list[Any]:
    if not rows:
        return ["", kind, []]
    # One statement's rows: the columns of the first are the columns of all.
    records = [tuple(row) for row in rows]
    return [_shape_name(rows[0]._fields, records), kind, records]


def _rows(name: str, records: list[list[Any]]) -> list[Row[Any]]:
    if not records:
        return []
    shape = _shape(name)
    if set(map(len, records)) != {shape.width}:
        raise ValueError("rows not of their shape's width")
    parse = datetime.fromisoformat
    for index in shape.datetimes:
        for record in records:
            value = record[index]
            if value is not None:
                record[index] = parse(value)
    return make_rows(shape.metadata, None, records)


def encode_value(value: Any) -> bytes:
    """A loader value (a row or None, a list of rows, a page of rows, an int) as bytes."""
    if value is None:
        return b"null"
    if type(value) is int:
        return orjson.dumps(value)
    if isinstance(value, Row):
        return orjson.dumps(_rows_payload("o", [value]))
    if isinstance(value, Page):
        return orjson.dumps([*_rows_payload("p", value.rows), value.has_next, value.has_previous])
    if isinstance(value, list):
        return orjson.dumps(_rows_payload("l", value))
    raise TypeError(f"cannot cache a {type(value).__name__}")


def decode_value(raw: bytes) -> Any:
    """The loader value `encode_value` stored (ValueError, TypeError... when it is not one)."""
    payload = orjson.loads(raw)
    if payload is None or type(payload) is int:
        return payload
    name, kind, records = payload[0], payload[1], payload[2]
    if kind == "l":
        return _rows(name, records)
    if kind == "p":
        return Page(_rows(name, records), bool(payload[3]), bool(payload[4]))
    if kind == "o":
        return _rows(name, records)[0]
    raise ValueError(f"not an entity cache value: {kind!r}")


__all__ = ["CODEC_VERSION", "decode_value", "encode_value"]
