"""Errors that clients are allowed to see, each with a machine-readable code.

Anything else raised while resolving is masked as "Internal server error" and logged.
"""

from __future__ import annotations

from app.engine.errors import ClientError, ErrorCode


class InvalidInput(ClientError):
    """An argument is malformed or out of range."""

    code = ErrorCode.BAD_USER_INPUT


class Unauthenticated(ClientError):
    """Credentials were sent but do not hold (bad, expired or revoked token)."""

    code = ErrorCode.UNAUTHENTICATED
