"""Password hashing (Argon2id, OWASP parameters, off the event loop, bounded) and the password and email rules."""

from __future__ import annotations

import asyncio
import threading
import time

import argon2
import pytest

from app.platform.passwords import (
    MAX_PASSWORD_LENGTH,
    InvalidEmail,
    PasswordHasher,
    normalize_email,
    password_hasher,
    password_problem,
)

PASSWORD = "violet-harbor-lantern-42"


class CountingHasher(argon2.PasswordHasher):
    """A cheap Argon2id hasher that records how many hashes run at the same time."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.threads: set[int] = set()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.threads.add(threading.get_ident())
        try:
            time.sleep(0.02)  # long enough for the others to pile up if they were let through
            return super().hash(password, salt=salt)
        finally:
            with self._lock:
                self.running -= 1


async def test_hashes_are_argon2id_with_the_owasp_parameters() -> None:
    hasher = password_hasher(2)

    stored = await hasher.hash(PASSWORD)

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await hasher.verify(stored, PASSWORD)).matches
    assert not (await hasher.verify(stored, PASSWORD + "!")).matches
    assert not (await hasher.verify(stored, PASSWORD)).needs_rehash


async def test_a_hash_with_older_parameters_verifies_and_asks_for_a_rehash() -> None:
    old = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2).hash(PASSWORD)

    check = await password_hasher(2).verify(old, PASSWORD)

    assert check.matches and check.needs_rehash


async def test_an_account_without_a_hash_never_matches() -> None:
    hasher = password_hasher(2)

    assert not (await hasher.verify(None, PASSWORD)).matches
    assert not (await hasher.verify("not a hash", PASSWORD)).matches


async def test_hashing_runs_off_the_loop_and_at_most_n_at_a_time() -> None:
    counting = CountingHasher()
    hasher = PasswordHasher(concurrency=2, hasher=counting)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    hashes = await asyncio.gather(*(hasher.hash(f"{PASSWORD}-{n}") for n in range(6)))
    done.set()
    await ticking

    assert len(set(hashes)) == 6
    assert counting.most_at_once == 2
    assert threading.get_ident() not in counting.threads
    assert ticks > 6  # the loop kept serving other tasks while hashes ran


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "Use at least 10 characters"),
        ("x" * (MAX_PASSWORD_LENGTH + 1), f"Use at most {MAX_PASSWORD_LENGTH} characters"),
        ("Password", "Use at least 10 characters"),
        ("1234567890", "too common"),
        ("password1234", "very common password"),
        ("aaaaaaaaaaaaaaaa", "easy to guess"),
        ("janedoe2024", "Add another word"),
    ],
)
def test_weak_passwords_get_a_helpful_reason(password: str, problem: str) -> None:
    found = password_problem(
        password, min_length=10, user_inputs=("jane.doe@shop.example.com", "Jane Doe")
    )

    assert found is not None and problem in found


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "correct horse battery staple", "Tr0ub4dor&3-extended", "Grüße aus Köln am Rhein"],
)
def test_strong_passwords_pass(password: str) -> None:
    assert password_problem(password, min_length=10, user_inputs=("Jane Doe",)) is None


def test_a_long_passphrase_is_judged_by_its_start() -> None:
    assert password_problem("a" * 100, min_length=10) is not None
    assert password_problem(PASSWORD * 5, min_length=10) is None


def test_emails_are_normalized_and_lower_cased() -> None:
    assert normalize_email("  Jane.Doe@Shop.Example.COM ") == "jane.doe@shop.example.com"


@pytest.mark.parametrize("email", ["jane", "jane@", "jane@@shop.example.com", "jane@localhost", ""])
def test_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(email)
