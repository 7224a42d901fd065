"""Passwords and emails: Argon2id hashing off the event loop, and the rules a new password meets.

Hashing is memory-hard on purpose (19 MiB per hash with the OWASP parameters), so
it runs in worker threads and at most `concurrency` hashes run at once per event
loop: a burst of logins queues instead of exhausting memory or stalling the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from dataclasses import dataclass
from functools import lru_cache
from weakref import WeakKeyDictionary

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email

# OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
OWASP_TIME_COST = 2
OWASP_MEMORY_COST_KIB = 19_456
OWASP_PARALLELISM = 1

MAX_PASSWORD_LENGTH = 256
MIN_STRENGTH_SCORE = 2  # zxcvbn: 0 too guessable ... 4 very unguessable
ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; the first 72 characters decide
# Obvious choices, refused even when zxcvbn would score a variant of them well enough.
OBVIOUS_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "passw0rd",
        "letmein",
        "welcome",
        "qwerty",
        "qwertyuiop",
        "iloveyou",
        "admin",
        "administrator",
        "changeme",
        "shopgraph",
        "123456789",
        "1234567890",
        "0987654321",
    }
)


def owasp_hasher() -> argon2.PasswordHasher:
    """An Argon2id hasher with the OWASP-recommended parameters."""
    return argon2.PasswordHasher(
        time_cost=OWASP_TIME_COST,
        memory_cost=OWASP_MEMORY_COST_KIB,
        parallelism=OWASP_PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """Whether a password matched, and whether its stored hash should be replaced."""

    matches: bool
    needs_rehash: bool = False


class PasswordHasher:
    """Hashes and verifies passwords in worker threads, at most `concurrency` at a time."""

    def __init__(self, *, concurrency: int, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or owasp_hasher()
        self._concurrency = concurrency
        self._semaphores: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            WeakKeyDictionary()
        )
        self._dummy_hash: str | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; the CLI and tests may run several in turn.
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self._concurrency)
        return semaphore

    async def hash(self, password: str) -> str:
        """The Argon2id hash of `password` (PHC string with salt and parameters)."""
        async with self._semaphore():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> PasswordCheck:
        """Check `password` against a stored hash; with no hash, spend the same time and fail."""
        async with self._semaphore():
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> PasswordCheck:
        if password_hash is None:
            # Unknown account (or one without a password): verify against a throwaway
            # hash so the answer takes as long as a wrong password does.
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
            with contextlib.suppress(VerificationError):
                self._hasher.verify(self._dummy_hash, password)
            return PasswordCheck(matches=False)
        try:
            self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(matches=False)
        return PasswordCheck(
            matches=True, needs_rehash=self._hasher.check_needs_rehash(password_hash)
        )


@lru_cache(maxsize=8)
def password_hasher(concurrency: int) -> PasswordHasher:
    """The process-wide hasher for a concurrency bound (one per settings value)."""
    return PasswordHasher(concurrency=concurrency)


def password_problem(
    password: str, *, min_length: int, user_inputs: tuple[str, ...] = ()
) -> str | None:
    """Why `password` is too weak to accept, or None when it is fine."""
    if len(password) < min_length:
        return f"Use at least {min_length} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters"
    if password.strip().lower() in OBVIOUS_PASSWORDS:
        return "This password is too common; choose one that others would not guess"
    # Imported on first use: its dictionaries take ~12 MB that a worker which never
    # checks a new password does not need.
    from zxcvbn import zxcvbn

    words = [word for text in user_inputs for word in _words(text)]
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=words)
    if int(result["score"]) >= MIN_STRENGTH_SCORE:
        return None
    feedback = result.get("feedback") or {}
    hints = [feedback.get("warning") or "This password is too easy to guess"]
    hints.extend(feedback.get("suggestions") or ["Add another word or two."])
    return " ".join(hint.strip().rstrip(".") + "." for hint in hints if hint.strip())


def _words(text: str) -> list[str]:
    # zxcvbn matches user inputs as whole tokens: give it the pieces ("jane.doe@x" -> "jane",
    # "doe") and adjacent pairs run together ("Jane Doe" -> "janedoe").
    lowered = text.lower()
    for separator in "@._-+":
        lowered = lowered.replace(separator, " ")
    pieces = lowered.split()
    pairs = [first + second for first, second in itertools.pairwise(pieces)]
    return [text.lower(), *pieces, *pairs]


class InvalidEmail(ValueError):
    """The text is not an email address; the message says why."""


def normalize_email(email: str) -> str:
    """The lower-cased, normalized form of an email address; InvalidEmail if it is not one."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from None
    return result.normalized.lower()
