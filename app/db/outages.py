"""Telling a database outage from a bug: the one place that reads driver errors for it.

An outage (no connection, a lost one, a stalled server, a statement over its timeout, an
empty pool) is not the client's fault and not a bug: it is answered SERVICE_UNAVAILABLE
with a one-line warning, not "Internal server error" with a traceback per request.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exc

from app.platform.errors import ServiceUnavailable

# SQLSTATEs of a database that cannot serve now (PostgreSQL appendix A): class 08 is
# "connection exception"; the others are a statement cancelled by statement_timeout,
# too many connections, and a server shutting down or starting.
_UNAVAILABLE_STATES = {
    "57014": "a statement ran over its timeout",
    "53300": "the server has no connection slot free",
    "57P01": "the server is shutting down",
    "57P02": "the server is shutting down",
    "57P03": "the server is starting",
}
# Errors raised by the socket layer count only where they come from the database drivers.
_DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def database_outage(error: BaseException) -> ServiceUnavailable | None:
    """The client's answer when `error` (or what caused it) means the database cannot serve."""
    reason = _reason(error)
    if reason is None:
        return None
    unavailable = ServiceUnavailable(
        f"The database is not available right now ({reason}); retry in a moment"
    )
    unavailable.__cause__ = error
    return unavailable


def _reason(error: BaseException) -> str | None:
    for cause in _chain(error):
        if isinstance(cause, exc.TimeoutError):  # the pool's checkout timeout
            return "no connection became free in time"
        if isinstance(cause, exc.DBAPIError) and cause.connection_invalidated:
            return "the connection was lost"
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str):
            if state.startswith("08"):
                return "the connection was lost"
            if state in _UNAVAILABLE_STATES:
                return _UNAVAILABLE_STATES[state]
        name = type(cause).__name__
        if name in {"ConnectionDoesNotExistError", "ConnectionFailureError"}:
            return "the connection was lost"
        if isinstance(cause, exc.OperationalError) and "locked" in str(cause):
            return "the database is busy"  # SQLite's busy timeout ran out
        if isinstance(cause, TimeoutError | OSError) and _raised_by_a_driver(cause):
            return "cannot connect" if not isinstance(cause, TimeoutError) else "it timed out"
        if isinstance(cause, exc.InterfaceError) and "closed" in str(cause):
            return "the connection was lost"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_by_a_driver(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DRIVER_MODULES):
            return True
        traceback = traceback.tb_next
    return False


__all__ = ["database_outage"]
