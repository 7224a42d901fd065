"""UserError: how mutations report expected failures, as data."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.services.errors import DomainError


@strawberry.enum(description="What kind of expected failure a UserError reports.")
class UserErrorCode(Enum):
    """Codes of expected failures."""

    INVALID = strawberry.enum_value("INVALID", description="A value is malformed or out of range.")
    REQUIRED = strawberry.enum_value("REQUIRED", description="A value is missing.")
    NOT_FOUND = strawberry.enum_value(
        "NOT_FOUND", description="The object does not exist or is not visible to you."
    )
    ALREADY_EXISTS = strawberry.enum_value(
        "ALREADY_EXISTS", description="A unique value is already taken."
    )
    INVALID_CREDENTIALS = strawberry.enum_value(
        "INVALID_CREDENTIALS", description="Email and password (or token) do not match."
    )
    WEAK_PASSWORD = strawberry.enum_value(
        "WEAK_PASSWORD", description="The password is too short or too common."
    )
    OUT_OF_STOCK = strawberry.enum_value(
        "OUT_OF_STOCK", description="Not enough units are in stock."
    )
    PAYMENT_DECLINED = strawberry.enum_value(
        "PAYMENT_DECLINED", description="The payment was declined."
    )
    IDEMPOTENCY_KEY_REUSED = strawberry.enum_value(
        "IDEMPOTENCY_KEY_REUSED",
        description="The idempotency key was used for a different request.",
    )
    ILLEGAL_TRANSITION = strawberry.enum_value(
        "ILLEGAL_TRANSITION",
        description="The object cannot move to that state from its current one.",
    )
    FORBIDDEN = strawberry.enum_value(
        "FORBIDDEN", description="You may not do this to this object."
    )
    THROTTLED = strawberry.enum_value(
        "THROTTLED", description="Too many attempts; try again later."
    )


@strawberry.type(description="An expected failure of a mutation (validation, not found, ...).")
class UserError:
    """One problem with the input."""

    field: list[str] | None = strawberry.field(
        description='Path of the input field at fault, e.g. ["input", "email"]; null if none.'
    )
    message: str = strawberry.field(description="What went wrong, for people.")
    code: UserErrorCode = strawberry.field(description="What went wrong, for programs.")

    @classmethod
    def from_domain(cls, error: DomainError) -> UserError:
        """Map a domain error to a UserError."""
        return cls(field=error.field, message=error.message, code=UserErrorCode[error.kind.value])
