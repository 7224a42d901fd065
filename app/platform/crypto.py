"""Personal data at rest: AES-256-GCM with a key id on every value, and keyed search hashes.

A sealed value is text, so it fits any string column:

    sg1.<key id>.<base64url(12-byte nonce + ciphertext + 16-byte tag)>

`sg1` is the format's version. The key id names the key that sealed it, so after a
rotation (a new DATA_KEY_ID, the old key still listed in DATA_KEYS) old rows still
open and `needs_rotation` tells which rows to re-seal. Each value is bound to a
context (e.g. "addresses.line1"), authenticated with the version and key id as
associated data: a value copied into another column, or relabelled with another
key id, does not open.

Equality search on a sealed column (orders by customer email) uses `search_hash`:
HMAC-SHA256 with its own key over the trimmed, lower-cased text, in a column of its
own. Keys never appear in repr, str, logs or error messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import Settings

VERSION = "sg1"
NONCE_BYTES = 12  # 96-bit random nonces: NIST SP 800-38D's recommended size for GCM
TAG_BYTES = 16
KEY_BYTES = 32
# Development only (production refuses to start without DATA_KEYS and DATA_HASH_KEY):
# keys derived from SECRET_KEY, as the JWT key is when JWT_KEYS is unset.
DEVELOPMENT_KEY_ID = "dev"
_DEVELOPMENT_DATA_INFO = b"shopgraph data key v1"
_DEVELOPMENT_HASH_INFO = b"shopgraph search hash key v1"


class CryptoError(Exception):
    """A sealed value cannot be opened; the message says why, never with a key or plaintext."""


class MalformedValue(CryptoError):
    """The text is not a sealed value of a known version."""


class UnknownKeyId(CryptoError):
    """The value was sealed with a key that is not (or no longer) configured."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed with key id {key_id!r}, which is not in SHOPGRAPH_DATA_KEYS")
        self.key_id = key_id


class TamperedValue(CryptoError):
    """Authentication failed: the value was altered, or belongs to another context."""


def derive_development_key(secret_key: str, info: bytes) -> bytes:
    """A deterministic 32-byte key from SECRET_KEY (HKDF-SHA256), for development only."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(
        secret_key.encode()
    )


def normalize_for_search(text: str) -> str:
    """The form a search hash is taken of: trimmed and lower-cased."""
    return text.strip().lower()


class DataCipher:
    """Seals and opens personal fields with the configured keys; one per process."""

    __slots__ = ("_current", "_hash_key", "_keys")

    def __init__(self, keys: Mapping[str, bytes], *, current_key_id: str, hash_key: bytes) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current key id {current_key_id!r} is not among the keys")
        for kid, key in keys.items():
            if "." in kid or not kid:
                raise ValueError(f"key id {kid!r} must be non-empty and hold no '.'")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes")
        if len(hash_key) < KEY_BYTES:
            raise ValueError(f"the search hash key must be at least {KEY_BYTES} bytes")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self._current = current_key_id
        self._hash_key = bytes(hash_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> DataCipher:
        """The cipher for DATA_KEYS / DATA_KEY_ID / DATA_HASH_KEY (development: derived keys)."""
        if settings.data_keys:
            keys = {kid: key.get_secret_value() for kid, key in settings.data_keys.items()}
        else:
            keys = {
                DEVELOPMENT_KEY_ID: derive_development_key(
                    settings.secret_key, _DEVELOPMENT_DATA_INFO
                )
            }
        if settings.data_hash_key is not None:
            hash_key = settings.data_hash_key.get_secret_value()
        else:
            hash_key = derive_development_key(settings.secret_key, _DEVELOPMENT_HASH_INFO)
        return cls(keys, current_key_id=settings.data_key_id or next(iter(keys)), hash_key=hash_key)

    @property
    def current_key_id(self) -> str:
        """The key id new values are sealed with."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id that opens values."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"DataCipher(key_ids={list(self._keys)!r}, current_key_id={self._current!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the keys out (a job payload, a cache entry): refuse.
        raise TypeError("a DataCipher holds keys and is not serialisable")

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt `plaintext` for `context` (e.g. "addresses.line1") with the current key."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(
            nonce, plaintext.encode(), _associated(self._current, context)
        )
        return f"{VERSION}.{self._current}.{_b64encode(nonce + sealed)}"

    def decrypt(self, value: str, *, context: str) -> str:
        """The plaintext of a sealed value; CryptoError if it is malformed, unknown or altered."""
        key_id, blob = _split(value)
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKeyId(key_id)
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            plaintext = key.decrypt(nonce, sealed, _associated(key_id, context))
        except InvalidTag:
            raise TamperedValue(
                f"a value sealed with key id {key_id!r} does not authenticate for "
                f"{context!r}: altered, or copied from another column"
            ) from None
        try:
            return plaintext.decode()
        except UnicodeDecodeError:  # only a value not made by encrypt() gets here
            raise MalformedValue("the sealed value is not UTF-8 text") from None

    def needs_rotation(self, value: str) -> bool:
        """Whether a sealed value was sealed with another key than the current one."""
        return key_id_of(value) != self._current

    def reencrypt(self, value: str, *, context: str) -> str:
        """The value sealed with the current key (unchanged if it already is)."""
        if not self.needs_rotation(value):
            return value
        return self.encrypt(self.decrypt(value, context=context), context=context)

    def search_hash(self, text: str) -> str:
        """HMAC-SHA256 (hex) of the trimmed, lower-cased text, for equality search."""
        normalized = normalize_for_search(text).encode()
        return hmac.new(self._hash_key, normalized, hashlib.sha256).hexdigest()


def key_id_of(value: str) -> str:
    """The key id a sealed value carries; MalformedValue if it is no sealed value."""
    return _split(value)[0]


def _associated(key_id: str, context: str) -> bytes:
    # Version and key id are authenticated too, so neither can be swapped unnoticed.
    return f"{VERSION}\x00{key_id}\x00{context}".encode()


def _split(value: str) -> tuple[str, bytes]:
    version, _, rest = value.partition(".")
    key_id, dot, encoded = rest.partition(".")
    if version != VERSION or not dot or not key_id:
        raise MalformedValue(f"not a sealed value of format {VERSION}")
    try:
        blob = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise MalformedValue("the sealed value's payload is not base64url") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise MalformedValue("the sealed value is too short")
    return key_id, blob


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
