"""What clients see of errors: a code on every error, and nothing internal.

Client errors (bad input, permissions, parse and validation failures) keep their
message; anything unexpected becomes "Internal server error" with the request id,
and is logged in full with that id.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from graphql import GraphQLError


class ErrorCode(StrEnum):
    """Values of errors[].extensions.code."""

    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    THROTTLED = "THROTTLED"
    TIMEOUT = "TIMEOUT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # Persisted documents (APQ and trusted documents), named as Apollo's servers name them.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
    PERSISTED_QUERY_ID_REQUIRED = "PERSISTED_QUERY_ID_REQUIRED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ClientError(Exception):
    """An error whose message is safe and useful to show to the client."""

    code: ErrorCode = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


def too_complex(message: str, nodes: Any = None) -> GraphQLError:
    """A QUERY_TOO_COMPLEX error, refused before execution."""
    return GraphQLError(message, nodes, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value})


logger = logging.getLogger("shopgraph.errors")

INTERNAL_MESSAGE = "Internal server error"


def client_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The version of `error` that is safe to send, with extensions.code set."""
    original = error.original_error
    if original is None:
        if error.path is not None:
            return _masked(error, request_id)
        if error.extensions and error.extensions.get("code"):
            return error  # our own request-level errors (limits, timeouts) carry their code
        code = ErrorCode.GRAPHQL_VALIDATION_FAILED
        if error.message.startswith("Syntax Error"):
            code = ErrorCode.GRAPHQL_PARSE_FAILED
        elif _is_variable_value_error(error):
            code = ErrorCode.BAD_USER_INPUT
        return _with_code(error, code.value)
    if isinstance(original, ClientError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            path=error.path,
            extensions={**(error.extensions or {}), "code": original.code.value},
        )
    if isinstance(original, GraphQLError):
        extensions = original.extensions or {}
        return _with_code(error, str(extensions.get("code", ErrorCode.BAD_USER_INPUT.value)))
    return _masked(error, request_id)


def _is_variable_value_error(error: GraphQLError) -> bool:
    # Coercing a variable's value fails with "Variable '$x' has invalid value: ...";
    # other "Variable ..." messages ("is never used", "is not defined") are validation errors.
    return error.message.startswith("Variable ") and " has invalid value" in error.message


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if error.extensions and error.extensions.get("code") == code:
        return error
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": code},
    )


def _masked(error: GraphQLError, request_id: str) -> GraphQLError:
    # stdlib logging (the engine imports no app code); the app routes it to its logs.
    logger.error(
        "unexpected error while resolving: request_id=%s path=%s error=%s",
        request_id,
        error.path,
        error.message,
        exc_info=error.original_error or error,
    )
    return GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": request_id},
    )
