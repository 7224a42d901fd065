"""The data layer's entry points: engines and sessions, statement counting."""

from app.db.engines import Database
from app.db.statements import StatementCounter, count_statements, note_statement

__all__ = ["Database", "StatementCounter", "count_statements", "note_statement"]
