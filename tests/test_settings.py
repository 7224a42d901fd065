"""Settings: typed, validated, and every refusal names the setting at fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.settings import (
    DEVELOPMENT_SECRET_KEY,
    MIN_SECRET_KEY_LENGTH,
    Environment,
    SettingsError,
    load_settings,
)

PRODUCTION_SECRET = "s" * MIN_SECRET_KEY_LENGTH


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SHOPGRAPH_* variable of the surrounding shell leaks into these tests."""
    import os

    for name in [name for name in os.environ if name.startswith("SHOPGRAPH_")]:
        monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"port": "abc"}, "SHOPGRAPH_PORT"),
        ({"port": 0}, "SHOPGRAPH_PORT"),
        ({"port": 65536}, "SHOPGRAPH_PORT"),
        ({"workers": 0}, "SHOPGRAPH_WORKERS"),
        ({"env": "staging"}, "SHOPGRAPH_ENV"),
        ({"database_url": "mysql://x"}, "SHOPGRAPH_DATABASE_URL"),
        ({"database_url": "postgresql://x"}, "SHOPGRAPH_DATABASE_URL"),
        ({"redis_url": "http://x"}, "SHOPGRAPH_REDIS_URL"),
        ({"log_level": "LOUD"}, "SHOPGRAPH_LOG_LEVEL"),
        ({"currency": "euro"}, "SHOPGRAPH_CURRENCY"),
        ({"max_body_bytes": 10}, "SHOPGRAPH_MAX_BODY_BYTES"),
        ({"max_page_size": 0}, "SHOPGRAPH_MAX_PAGE_SIZE"),
        ({"debug": "maybe"}, "SHOPGRAPH_DEBUG"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else None,
)
def test_a_bad_value_is_refused_naming_the_setting(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(**overrides)

    message = str(refused.value)
    assert message.startswith(f"{named}: "), message
    assert "\n" not in message


def test_a_bad_value_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPGRAPH_PORT", "abc")

    with pytest.raises(SettingsError, match=r"^SHOPGRAPH_PORT: "):
        load_settings()


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPGRAPH_PORT", "9001")
    monkeypatch.setenv("SHOPGRAPH_REDIS_URL", "")

    settings = load_settings()

    assert settings.port == 9001
    assert settings.redis_url is None


@pytest.mark.parametrize(
    "secret",
    [None, DEVELOPMENT_SECRET_KEY, "s" * (MIN_SECRET_KEY_LENGTH - 1)],
    ids=["default", "development-key", "short"],
)
def test_production_refuses_a_weak_secret(secret: str | None) -> None:
    overrides: dict[str, object] = {"env": "production"}
    if secret is not None:
        overrides["secret_key"] = secret

    with pytest.raises(SettingsError, match=r"^SHOPGRAPH_SECRET_KEY: "):
        load_settings(**overrides)


def test_production_accepts_a_long_secret() -> None:
    settings = load_settings(env="production", secret_key=PRODUCTION_SECRET)

    assert settings.env is Environment.PRODUCTION


def test_development_accepts_the_default_secret() -> None:
    settings = load_settings()

    assert settings.secret_key == DEVELOPMENT_SECRET_KEY


def test_a_default_page_size_over_the_cap_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^SHOPGRAPH_DEFAULT_PAGE_SIZE: "):
        load_settings(default_page_size=50, max_page_size=40)


def test_a_default_page_size_equal_to_the_cap_is_accepted() -> None:
    settings = load_settings(default_page_size=40, max_page_size=40)

    assert settings.default_page_size == settings.max_page_size == 40


def test_debug_defaults_on_in_development() -> None:
    assert load_settings().debug_enabled is True


def test_debug_defaults_off_in_production() -> None:
    assert load_settings(env="production", secret_key=PRODUCTION_SECRET).debug_enabled is False


@pytest.mark.parametrize(("env", "debug"), [("development", False), ("production", True)])
def test_debug_can_be_set_explicitly(env: str, debug: bool) -> None:
    settings = load_settings(env=env, secret_key=PRODUCTION_SECRET, debug=debug)

    assert settings.debug_enabled is debug


def test_the_embedded_database_is_the_default() -> None:
    settings = load_settings()

    assert settings.is_sqlite
    assert settings.database_url == "sqlite+aiosqlite:///./shopgraph.db"
    assert settings.redis_url is None
