"""Opaque Relay global IDs: base64url("TypeName:pk")."""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from app.platform.errors import InvalidInput

# Primary keys are 32-bit INTEGER columns: a larger pk cannot name a row, and
# PostgreSQL refuses it as a query parameter (which would surface as a 500).
MAX_PK = 2**31 - 1
_NOT_OURS = "Invalid ID {!r}: not a shopgraph global ID"


class GlobalId(NamedTuple):
    """A decoded global ID."""

    type_name: str
    pk: int


def to_global_id(type_name: str, pk: int) -> str:
    """Encode a type name and primary key as an opaque ID."""
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def from_global_id(value: str, *, field: str | None = None) -> GlobalId:
    """Decode an opaque ID; raise InvalidInput (about `field`) when it is not one of ours."""
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        type_name, _, pk_text = raw.partition(":")
        pk = int(pk_text)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput(_NOT_OURS.format(value[:80]), field=field) from None
    if not type_name or not 1 <= pk <= MAX_PK or pk_text != str(pk):
        raise InvalidInput(_NOT_OURS.format(value[:80]), field=field)
    return GlobalId(type_name, pk)


def decode_id_of(value: str, expected_type: str, *, field: str | None = None) -> int:
    """Decode an ID that must name `expected_type`; return its primary key."""
    decoded = from_global_id(value, field=field)
    if decoded.type_name != expected_type:
        raise InvalidInput(
            f"Invalid ID {value[:80]!r}: expected a {expected_type} ID, got a {decoded.type_name} ID",
            field=field,
        )
    return decoded.pk
