"""Errors that clients are allowed to see: one hierarchy, rooted at the engine's ClientError.

A DomainError is an expected failure of a use case. Mutations report it as a
userError (its `kind` is the UserErrorCode, its `field` a plain domain name that
the resolver turns into an input path); anywhere else it reaches the errors list
with its message and the ErrorCode its kind maps to. Anything that is not a
ClientError is masked as "Internal server error" and logged.
"""

from __future__ import annotations

from enum import StrEnum

from app.engine.errors import ClientError, ErrorCode


class ErrorKind(StrEnum):
    """The machine-readable kind of a domain error (the schema's UserErrorCode is this enum)."""

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


# Kinds with a request-level code of their own; every other kind is bad user input.
_CODES = {
    ErrorKind.NOT_FOUND: ErrorCode.NOT_FOUND,
    ErrorKind.FORBIDDEN: ErrorCode.FORBIDDEN,
    ErrorKind.THROTTLED: ErrorCode.THROTTLED,
}


def error_code(kind: ErrorKind) -> ErrorCode:
    """The errors[].extensions.code of a domain error of this kind."""
    return _CODES.get(kind, ErrorCode.BAD_USER_INPUT)


class DomainError(ClientError):
    """An expected failure; `field` names the value at fault in domain terms (e.g. "postal_code")."""

    kind: ErrorKind = ErrorKind.INVALID

    def __init__(
        self, message: str, *, field: str | None = None, kind: ErrorKind | None = None
    ) -> None:
        if kind is not None:
            self.kind = kind
        super().__init__(message, code=error_code(self.kind))
        self.field = field


class InvalidInput(DomainError):
    """An argument is malformed or out of range."""

    kind = ErrorKind.INVALID


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

    def __init__(self, message: str, *, retry_after: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Unauthenticated(ClientError):
    """Credentials were sent but do not hold (bad, expired or revoked token): a request error."""

    code = ErrorCode.UNAUTHENTICATED


class ServiceUnavailable(ClientError):
    """A dependency (the database) cannot serve now; retrying shortly may work."""

    code = ErrorCode.SERVICE_UNAVAILABLE
