"""Settings written as text: lists, `key:value` maps, origins, networks and rate tiers.

Environment variables are text; these parsers turn the forms the README documents
(comma-separated, or JSON) into values, with errors that say what was expected.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

MAX_TIER_CAPACITY = 10_000_000
MAX_TIER_RESTORE_RATE = 1_000_000
ORIGIN = re.compile(r"^https?://[^/?#\s]+$")
TIER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Key ids travel inside every ciphertext (app/platform/crypto.py): no separator in them.
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DATA_KEY_BYTES = 32  # AES-256


def as_list(value: object) -> list[Any]:
    """A list setting from a list, a JSON list or comma-separated text."""
    if not isinstance(value, str):
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list")
        return list(value)
    text = value.strip()
    if text.startswith("["):
        parsed = _json(text)
        if not isinstance(parsed, list):
            raise ValueError("must be a JSON list")
        return parsed
    return [part.strip() for part in text.split(",") if part.strip()]


def as_mapping(value: object, *, entry: str, example: str, echo: bool = False) -> dict[str, Any]:
    """A dict setting from a dict, a JSON object or `key:value,key2:value2` text."""
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    if not isinstance(value, str):
        raise ValueError(f"must be text like {example} or a JSON object")
    text = value.strip()
    if text.startswith("{"):
        parsed = _json(text)
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
        return parsed
    mapping: dict[str, Any] = {}
    for number, part in enumerate((part for part in text.split(",") if part.strip()), 1):
        key, colon, item = part.partition(":")
        if not colon or not key.strip():
            # Secrets are never echoed: such entries are named by position.
            shown = repr(part.strip()) if echo else f"entry {number}"
            raise ValueError(f"{shown} is not {entry}; expected e.g. {example} or a JSON object")
        mapping[key.strip()] = item.strip()
    return mapping


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not valid JSON ({error.msg} at character {error.pos})") from None


def origin(item: object) -> str:
    if not isinstance(item, str):
        raise ValueError(f"{item!r} is not an origin")
    origin = item.strip().removesuffix("/")
    if origin != "*" and not ORIGIN.match(origin):
        raise ValueError(
            f"{item!r} is not an origin: scheme://host[:port], e.g. http://localhost:3000"
        )
    return origin


def network(item: object) -> str:
    text = str(item).strip() if isinstance(item, str | int) else ""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(
            f"{item!r} is not an IP address or CIDR, e.g. 10.0.0.1 or 10.0.0.0/8"
        ) from None


def tier(name: str, spec: object) -> tuple[int, float]:
    """capacity and restore rate of one tier, from `capacity/rate` text or a [capacity, rate] pair."""
    if not TIER_NAME.match(name):
        raise ValueError(f"tier name {name!r} may hold only letters, digits, '_', '-' and '.'")
    usage = f"tier {name!r} needs capacity/restore_per_second, e.g. {name}:1000/50"
    if isinstance(spec, str):
        capacity_text, slash, rate_text = spec.partition("/")
        if not slash:
            raise ValueError(usage)
        try:
            capacity, rate = int(capacity_text.strip()), float(rate_text.strip())
        except ValueError:
            raise ValueError(usage) from None
    elif (
        isinstance(spec, list | tuple)
        and len(spec) == 2
        and all(isinstance(part, int | float) and not isinstance(part, bool) for part in spec)
    ):
        if spec[0] != int(spec[0]):
            raise ValueError(f"tier {name!r}: capacity must be a whole number")
        capacity, rate = int(spec[0]), float(spec[1])
    else:
        raise ValueError(usage)
    if not 1 <= capacity <= MAX_TIER_CAPACITY:
        raise ValueError(f"tier {name!r}: capacity must be from 1 to {MAX_TIER_CAPACITY}")
    # A restore rate of 0 would never refill the bucket (and divides by zero in Retry-After).
    if not (math.isfinite(rate) and 0 < rate <= MAX_TIER_RESTORE_RATE):
        raise ValueError(
            f"tier {name!r}: restore rate must be above 0 and at most {MAX_TIER_RESTORE_RATE}"
        )
    return capacity, rate


def data_keys(value: object) -> dict[str, bytes]:
    """key id -> 32-byte key, from `kid:base64,kid2:base64` text or a JSON object."""
    keys = as_mapping(value, entry="key_id:base64key", example="k1:base64key,k2:base64key")
    for kid in keys:
        if not KEY_ID.match(kid):
            raise ValueError(f"key id {kid!r} may hold only 1-32 letters, digits, '_' and '-'")
    return {kid: data_key(f"key {kid!r}", secret) for kid, secret in keys.items()}


def data_key(name: str, value: object) -> bytes:
    """A 32-byte key from base64 text (standard or URL-safe alphabet); the message never echoes it."""
    if not isinstance(value, str | bytes):
        raise ValueError(f"{name} must be base64 text")
    text = value.decode() if isinstance(value, bytes) else value
    text = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64 text") from None
    if len(key) != DATA_KEY_BYTES:
        raise ValueError(
            f"{name} must be {DATA_KEY_BYTES} random bytes in base64 (got {len(key)} bytes), e.g. "
            "from python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"
        )
    return key


def smtp_url(value: object) -> str:
    """An SMTP server URL, smtp://[user:password@]host[:port] or smtps://; never echoed."""
    if not isinstance(value, str):
        raise ValueError("must be text like smtp://user:password@host:587")
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL like smtp://user:password@host:587") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://[user:password@]host[:port] or smtps://… (implicit TLS)")
    if port == 0 or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be smtp://[user:password@]host[:port], nothing after the port")
    return value.strip()


def mailbox(value: str) -> str:
    """A From address, `Name <user@domain>` or `user@domain`."""
    _, address = parseaddr(value)
    user, at, domain = address.rpartition("@")
    if not (at and user and domain and "." in domain) or len(value) > 320:
        raise ValueError(f"{value!r} is not a mailbox like Shop <no-reply@shop.example>")
    try:
        Address(addr_spec=address)
    except ValueError:
        raise ValueError(f"{value!r} is not a mailbox like Shop <no-reply@shop.example>") from None
    return value
