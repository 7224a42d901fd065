"""Request-level errors and the one internal-error answer shared by the pipeline and middleware."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog

from app.engine import ErrorCode

logger = structlog.get_logger("shopgraph.http")

INTERNAL_MESSAGE = "Internal server error"


class RequestError(Exception):
    """The request cannot be served as sent; answered with `status` and a GraphQL error body."""

    def __init__(
        self,
        status: int,
        message: str,
        code: ErrorCode,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def formatted(self) -> dict[str, Any]:
        """The error as an entry of a response's `errors` (`extensions` after the code)."""
        return {
            "message": self.message,
            "extensions": {"code": self.code.value, **(self.extensions or {})},
        }


def internal_error_body(request_id: str) -> dict[str, Any]:
    """The body answered for an unexpected failure: no detail, only the request id."""
    return {
        "errors": [
            {
                "message": INTERNAL_MESSAGE,
                "extensions": {
                    "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                    "requestId": request_id,
                },
            }
        ]
    }


def internal_error_bytes(request_id: str) -> bytes:
    """`internal_error_body` encoded as JSON."""
    return orjson.dumps(internal_error_body(request_id))


def log_unexpected(error: BaseException, *, request_id: str, where: str) -> None:
    """Log an unexpected failure in full (traceback included) with the request id."""
    logger.error("unexpected error", where=where, request_id=request_id, exc_info=error)


def stray_cancellation() -> bool:
    """Whether a CancelledError caught now is a bug's (nobody is cancelling this task)."""
    task = asyncio.current_task()
    return task is not None and not task.cancelling()
