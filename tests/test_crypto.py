"""Personal data at rest: sealed values open only with their key and context, keys rotate,
search hashes are stable, and no key is ever shown."""

from __future__ import annotations

import base64
import logging
import os
import pickle
from collections.abc import Iterator

import pytest
import structlog

from app.platform.crypto import (
    DEVELOPMENT_KEY_ID,
    DataCipher,
    MalformedValue,
    TamperedValue,
    UnknownKeyId,
    key_id_of,
)
from app.settings import SettingsError, load_settings
from tests.conftest import PRODUCTION_DATA_KEYS

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
HASH_KEY = bytes(range(200, 232))
ADDRESS_LINE = "addresses.line1"


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [name for name in os.environ if name.startswith("SHOPGRAPH_")]:
        monkeypatch.delenv(name)
    yield


@pytest.fixture
def cipher() -> DataCipher:
    """A cipher with one old and one current key."""
    return DataCipher({"old": OLD_KEY, "new": NEW_KEY}, current_key_id="new", hash_key=HASH_KEY)


def test_a_value_round_trips_and_carries_the_current_key_id(cipher: DataCipher) -> None:
    sealed = cipher.encrypt("Hauptstraße 1", context=ADDRESS_LINE)

    assert sealed.startswith("sg1.new.")
    assert "Hauptstra" not in sealed
    assert key_id_of(sealed) == "new"
    assert cipher.decrypt(sealed, context=ADDRESS_LINE) == "Hauptstraße 1"


def test_the_same_plaintext_seals_differently_each_time(cipher: DataCipher) -> None:
    # random nonces: equal values are not recognisable in the table
    first = cipher.encrypt("x", context=ADDRESS_LINE)
    second = cipher.encrypt("x", context=ADDRESS_LINE)

    assert first != second


@pytest.mark.parametrize("position", [10, 20, -1])
def test_an_altered_value_does_not_open(cipher: DataCipher, position: int) -> None:
    sealed = cipher.encrypt("+49 30 1234567", context="users.phone")
    prefix = len("sg1.new.")
    payload = bytearray(base64.urlsafe_b64decode(sealed[prefix:] + "=" * (-len(sealed) % 4)))
    payload[position] ^= 0x01
    altered = sealed[:prefix] + base64.urlsafe_b64encode(bytes(payload)).rstrip(b"=").decode()

    with pytest.raises(TamperedValue):
        cipher.decrypt(altered, context="users.phone")


def test_a_value_moved_to_another_column_does_not_open(cipher: DataCipher) -> None:
    sealed = cipher.encrypt("Berlin", context="addresses.city")

    with pytest.raises(TamperedValue) as refused:
        cipher.decrypt(sealed, context="addresses.line1")

    assert "Berlin" not in str(refused.value)


def test_a_value_relabelled_with_another_key_id_does_not_open() -> None:
    # even when both ids hold the same key bytes: the key id is authenticated too
    cipher = DataCipher({"a": OLD_KEY, "b": OLD_KEY}, current_key_id="a", hash_key=HASH_KEY)
    sealed = cipher.encrypt("Berlin", context=ADDRESS_LINE)
    relabelled = sealed.replace("sg1.a.", "sg1.b.", 1)

    with pytest.raises(TamperedValue):
        cipher.decrypt(relabelled, context=ADDRESS_LINE)


def test_after_rotation_old_values_open_and_new_ones_use_the_new_key() -> None:
    # given a value sealed while "old" was the current key
    before = DataCipher({"old": OLD_KEY}, current_key_id="old", hash_key=HASH_KEY)
    sealed = before.encrypt("Jane Doe", context="addresses.full_name")

    # when the current key changes, the old one still listed
    after = DataCipher({"old": OLD_KEY, "new": NEW_KEY}, current_key_id="new", hash_key=HASH_KEY)

    # then the old value opens, is due for rotation, and re-encrypts under the new key
    assert after.decrypt(sealed, context="addresses.full_name") == "Jane Doe"
    assert after.needs_rotation(sealed)
    rotated = after.reencrypt(sealed, context="addresses.full_name")
    assert key_id_of(rotated) == "new"
    assert not after.needs_rotation(rotated)
    assert after.reencrypt(rotated, context="addresses.full_name") == rotated
    assert after.decrypt(rotated, context="addresses.full_name") == "Jane Doe"


def test_a_value_of_a_retired_key_is_an_unknown_key_id(cipher: DataCipher) -> None:
    retired = DataCipher({"gone": OLD_KEY}, current_key_id="gone", hash_key=HASH_KEY)
    sealed = retired.encrypt("x", context=ADDRESS_LINE)

    with pytest.raises(UnknownKeyId) as refused:
        cipher.decrypt(sealed, context=ADDRESS_LINE)

    assert refused.value.key_id == "gone"
    assert "'gone'" in str(refused.value)


@pytest.mark.parametrize(
    "value", ["", "plaintext", "sg2.new.AAAA", "sg1.new", "sg1..AAAA", "sg1.new.AAAA", "sg1.new.*"]
)
def test_text_that_is_no_sealed_value_is_malformed(cipher: DataCipher, value: str) -> None:
    with pytest.raises(MalformedValue):
        cipher.decrypt(value, context=ADDRESS_LINE)


def test_the_search_hash_is_stable_normalized_and_keyed(cipher: DataCipher) -> None:
    same_key = DataCipher({"other": NEW_KEY}, current_key_id="other", hash_key=HASH_KEY)
    other_key = DataCipher({"new": NEW_KEY}, current_key_id="new", hash_key=bytes(32))

    digest = cipher.search_hash("jane@example.com")

    assert len(digest) == 64 and int(digest, 16) >= 0
    assert cipher.search_hash("  Jane@Example.COM ") == digest
    assert same_key.search_hash("jane@example.com") == digest  # independent of data keys
    assert other_key.search_hash("jane@example.com") != digest
    assert cipher.search_hash("john@example.com") != digest


def test_keys_are_not_shown_in_repr_str_logs_or_pickles(
    cipher: DataCipher, caplog: pytest.LogCaptureFixture
) -> None:
    shown = [repr(cipher), str(cipher), f"{cipher}"]
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("cipher %s", cipher)
        structlog.get_logger("test").info("cipher", cipher=cipher)
    shown.append(caplog.text)
    settings = load_settings(
        data_keys=f"k1:{_b64(OLD_KEY)}", data_hash_key=_b64(HASH_KEY), smtp_url="smtp://u:pw@h"
    )
    shown += [repr(settings), str(settings)]

    for text in shown:
        for key in (OLD_KEY, NEW_KEY, HASH_KEY):
            assert _b64(key) not in text
            assert key.hex() not in text
            assert repr(key)[2:-1] not in text
    assert "'new'" in repr(cipher)
    assert "pw" not in repr(settings)
    with pytest.raises(TypeError):
        pickle.dumps(cipher)


def test_settings_name_the_keys_and_the_current_one() -> None:
    settings = load_settings(
        data_keys=f"old:{_b64(OLD_KEY)},new:{base64.urlsafe_b64encode(NEW_KEY).decode()}",
        data_key_id="new",
        data_hash_key=_b64(HASH_KEY),
    )
    cipher = DataCipher.from_settings(settings)

    assert cipher.key_ids == ("old", "new")
    assert cipher.current_key_id == "new"
    assert cipher.search_hash("a") == DataCipher(
        {"k": OLD_KEY}, current_key_id="k", hash_key=HASH_KEY
    ).search_hash("a")


def test_development_derives_stable_keys_from_the_secret_key() -> None:
    first = DataCipher.from_settings(load_settings(secret_key="a" * 40))
    again = DataCipher.from_settings(load_settings(secret_key="a" * 40))
    other = DataCipher.from_settings(load_settings(secret_key="b" * 40))

    sealed = first.encrypt("x", context=ADDRESS_LINE)
    assert first.current_key_id == DEVELOPMENT_KEY_ID
    assert again.decrypt(sealed, context=ADDRESS_LINE) == "x"
    assert first.search_hash("a@b.c") == again.search_hash("a@b.c") != other.search_hash("a@b.c")
    with pytest.raises(TamperedValue):
        other.decrypt(sealed, context=ADDRESS_LINE)


@pytest.mark.parametrize(
    ("missing", "named"),
    [("data_keys", "SHOPGRAPH_DATA_KEYS"), ("data_hash_key", "SHOPGRAPH_DATA_HASH_KEY")],
)
def test_production_refuses_to_start_without_keys(missing: str, named: str) -> None:
    values = {k: v for k, v in PRODUCTION_DATA_KEYS.items() if k != missing}

    with pytest.raises(SettingsError, match=rf"^{named}: production needs"):
        load_settings(env="production", secret_key="s" * 40, **values)


def test_production_refuses_a_hash_key_that_is_also_a_data_key() -> None:
    with pytest.raises(SettingsError, match=r"^SHOPGRAPH_DATA_HASH_KEY: must differ"):
        load_settings(
            env="production",
            secret_key="s" * 40,
            data_keys=f"k1:{_b64(OLD_KEY)}",
            data_hash_key=_b64(OLD_KEY),
        )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOPGRAPH_DATA_KEYS", "k1"),
        ("SHOPGRAPH_DATA_KEYS", f"k1:{_b64(OLD_KEY[:16])}"),
        ("SHOPGRAPH_DATA_KEYS", f"k.1:{_b64(OLD_KEY)}"),
        ("SHOPGRAPH_DATA_KEYS", "k1:not base64!"),
        ("SHOPGRAPH_DATA_HASH_KEY", _b64(OLD_KEY[:20])),
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    message = str(refused.value)
    assert message.startswith(f"{variable}: "), message
    secret = value.partition(":")[2] if variable == "SHOPGRAPH_DATA_KEYS" else value
    assert not secret or secret not in message


def test_a_current_key_id_must_name_a_key() -> None:
    with pytest.raises(SettingsError, match=r"^SHOPGRAPH_DATA_KEY_ID: names no key"):
        load_settings(data_keys=f"k1:{_b64(OLD_KEY)}", data_key_id="k2")
