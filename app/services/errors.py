"""Domain errors: expected failures that mutations report as userErrors."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """The machine-readable kind of a domain error (UserErrorCode in the schema)."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    FORBIDDEN = "FORBIDDEN"
    THROTTLED = "THROTTLED"


class DomainError(Exception):
    """An expected failure of a use case; `field` is the input path it concerns, if any."""

    kind: ErrorKind = ErrorKind.INVALID

    def __init__(
        self, message: str, *, field: list[str] | None = None, kind: ErrorKind | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if kind is not None:
            self.kind = kind


class NotFound(DomainError):
    """The object does not exist, or the viewer may not see it."""

    kind = ErrorKind.NOT_FOUND


class AlreadyExists(DomainError):
    """A unique value is taken."""

    kind = ErrorKind.ALREADY_EXISTS


class PermissionDenied(DomainError):
    """The viewer may not do this to this object (ownership rules)."""

    kind = ErrorKind.FORBIDDEN


class InvalidCredentials(DomainError):
    """Email and password (or a refresh token) do not match; never says which part is wrong."""

    kind = ErrorKind.INVALID_CREDENTIALS


class WeakPassword(DomainError):
    """A new password is too short or too easy to guess."""

    kind = ErrorKind.WEAK_PASSWORD


class Throttled(DomainError):
    """Too many recent failures; `retry_after` says in how many seconds to try again."""

    kind = ErrorKind.THROTTLED

    def __init__(self, message: str, *, retry_after: float, field: list[str] | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
