"""UserError: how mutations report expected failures, as data."""

from __future__ import annotations

import strawberry

from app.platform.errors import ErrorKind
from app.schema.enums import graphql_enum

# The domain's ErrorKind is the GraphQL UserErrorCode: a new kind cannot be left unmapped.
UserErrorCode = graphql_enum(
    ErrorKind,
    name="UserErrorCode",
    description="What kind of expected failure a UserError reports.",
    values={
        ErrorKind.INVALID: "A value is malformed or out of range.",
        ErrorKind.REQUIRED: "A value is missing.",
        ErrorKind.NOT_FOUND: "The object does not exist or is not visible to you.",
        ErrorKind.ALREADY_EXISTS: "A unique value is already taken.",
        ErrorKind.INVALID_CREDENTIALS: "Email and password (or token) do not match.",
        ErrorKind.WEAK_PASSWORD: "The password is too short or too common.",
        ErrorKind.OUT_OF_STOCK: "Not enough units are in stock.",
        ErrorKind.PAYMENT_DECLINED: "The payment was declined.",
        ErrorKind.IDEMPOTENCY_KEY_REUSED: "The idempotency key was used for a different request.",
        ErrorKind.ILLEGAL_TRANSITION: "The object cannot move to that state from its current one.",
        ErrorKind.FORBIDDEN: "You may not do this to this object.",
        ErrorKind.THROTTLED: "Too many attempts; try again later.",
    },
)


@strawberry.type(description="An expected failure of a mutation (validation, not found, ...).")
class UserError:
    """One problem with the input."""

    field: list[str] | None = strawberry.field(
        description='Path of the input field at fault, e.g. ["input", "email"]; null if none.'
    )
    message: str = strawberry.field(description="What went wrong, for people.")
    code: ErrorKind = strawberry.field(description="What went wrong, for programs.")
