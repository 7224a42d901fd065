"""SQL statement counting: for `extensions.debug` and for the query-count tests.

Every statement run through the engines or the fast reads is noted on each counter
active in the current task (and the tasks it starts).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection


@dataclass
class StatementCounter:
    """Counts the SQL statements run while it is active (for debug output and tests)."""

    count: int = 0
    statements: list[str] = field(default_factory=list)
    keep_text: bool = False


# Counters nest (a test's counter around a request's debug counter): each sees every statement.
_active_counters: contextvars.ContextVar[tuple[StatementCounter, ...]] = contextvars.ContextVar(
    "shopgraph_statement_counters", default=()
)


@contextmanager
def count_statements(*, keep_text: bool = False) -> Iterator[StatementCounter]:
    """Count the SQL statements issued by this task and the tasks it starts."""
    counter = StatementCounter(keep_text=keep_text)
    token = _active_counters.set((*_active_counters.get(), counter))
    try:
        yield counter
    finally:
        _active_counters.reset(token)


def note_statement(statement: str) -> None:
    """Count one statement on every active counter."""
    for counter in _active_counters.get():
        counter.count += 1
        if counter.keep_text:
            counter.statements.append(statement)


def on_statement(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """SQLAlchemy's before_cursor_execute hook: count the statement."""
    note_statement(statement)
