"""Settings: typed, validated, and every refusal names the setting at fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.settings import (
    DEVELOPMENT_SECRET_KEY,
    MIN_SECRET_KEY_LENGTH,
    Environment,
    Settings,
    SettingsError,
    load_settings,
)
from tests.conftest import PRODUCTION_DATA_KEYS

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
    settings = load_settings(env="production", secret_key=PRODUCTION_SECRET, **PRODUCTION_DATA_KEYS)

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
    assert (
        load_settings(
            env="production", secret_key=PRODUCTION_SECRET, **PRODUCTION_DATA_KEYS
        ).debug_enabled
        is False
    )


@pytest.mark.parametrize(("env", "debug"), [("development", False), ("production", True)])
def test_debug_can_be_set_explicitly(env: str, debug: bool) -> None:
    settings = load_settings(
        env=env, secret_key=PRODUCTION_SECRET, debug=debug, **PRODUCTION_DATA_KEYS
    )

    assert settings.debug_enabled is debug


def test_the_embedded_database_is_the_default() -> None:
    settings = load_settings()

    assert settings.is_sqlite
    assert settings.database_url == "sqlite+aiosqlite:///./shopgraph.db"
    assert settings.redis_url is None


def _from_environment(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> Settings:
    monkeypatch.setenv(variable, value)
    return load_settings()


def _refusal(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith(f"{variable}: "), message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("http://localhost:3000", ["http://localhost:3000"]),
        ("http://a,http://b", ["http://a", "http://b"]),
        (" http://a/ , https://b.example:8443 ,", ["http://a", "https://b.example:8443"]),
        ('["http://a"]', ["http://a"]),
        ('  ["http://a", "https://b"]  ', ["http://a", "https://b"]),
        ("*", ["*"]),
        ("", []),
        ("[]", []),
    ],
)
def test_cors_origins_read_as_text_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, origins: list[str]
) -> None:
    assert _from_environment(monkeypatch, "SHOPGRAPH_CORS_ORIGINS", value).cors_origins == origins


@pytest.mark.parametrize(
    "value",
    ["localhost:3000", "http://a/path", "ftp://a", "http://a,b", '["http://a"', "[1]", '{"a": 1}'],
)
def test_a_bad_cors_origin_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    _refusal(monkeypatch, "SHOPGRAPH_CORS_ORIGINS", value)


def test_a_cors_origin_without_scheme_says_what_an_origin_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(monkeypatch, "SHOPGRAPH_CORS_ORIGINS", "localhost:3000")

    assert "'localhost:3000' is not an origin" in message
    assert "http://localhost:3000" in message


@pytest.mark.parametrize(
    ("value", "tiers"),
    [
        ("premium:5000/250,basic:1000/50", {"premium": (5000, 250.0), "basic": (1000, 50.0)}),
        (" premium : 5000 / 0.5 ", {"premium": (5000, 0.5)}),
        ('{"premium": [5000, 250]}', {"premium": (5000, 250.0)}),
        ('{"premium": "5000/250", "b": [1, 0.25]}', {"premium": (5000, 250.0), "b": (1, 0.25)}),
    ],
)
def test_partner_tiers_read_as_text_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, tiers: dict[str, tuple[int, float]]
) -> None:
    settings = _from_environment(monkeypatch, "SHOPGRAPH_PARTNER_TIERS", value)

    assert settings.partner_tiers == tiers


@pytest.mark.parametrize(
    "value",
    [
        "premium",
        "premium:5000",
        "premium:x/1",
        "premium:5000/x",
        "premium:5.5/1",
        "premium:5000/250,basic",
        "bad name:1/1",
        "",
        "{}",
        '{"premium": [5000]}',
        '{"premium": [true, 1]}',
        '{"premium": [1.5, 1]}',
        '{"premium": null}',
        '{"premium": [5000, 250]',
        "[1]",
    ],
)
def test_a_malformed_partner_tier_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    _refusal(monkeypatch, "SHOPGRAPH_PARTNER_TIERS", value)


@pytest.mark.parametrize(
    "value",
    [
        "premium:5000/0",
        "premium:5000/-1",
        "premium:0/250",
        "premium:-5/250",
        "premium:5000/nan",
        "premium:5000/inf",
        "premium:10000001/1",
        '{"premium": [5000, 0]}',
        '{"premium": [0, 250]}',
    ],
)
def test_a_partner_tier_that_cannot_refill_or_hold_points_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    message = _refusal(monkeypatch, "SHOPGRAPH_PARTNER_TIERS", value)

    assert "tier 'premium'" in message


def test_a_bare_tier_name_is_shown_with_the_expected_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(monkeypatch, "SHOPGRAPH_PARTNER_TIERS", "premium")

    assert "'premium' is not tier:capacity/restore_per_second" in message


def test_partner_tiers_given_in_code_are_validated_too() -> None:
    assert load_settings(partner_tiers={"a": (10, 1.0)}).partner_tiers == {"a": (10, 1.0)}
    with pytest.raises(SettingsError, match=r"^SHOPGRAPH_PARTNER_TIERS: tier 'a': restore"):
        load_settings(partner_tiers={"a": (10, 0.0)})


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("k1:s1,k2:s2", {"k1": "s1", "k2": "s2"}),
        ("k1:with:colons", {"k1": "with:colons"}),
        ('{"k1": "s,1"}', {"k1": "s,1"}),
        ("", None),
    ],
)
def test_jwt_keys_read_as_text_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, keys: dict[str, str] | None
) -> None:
    assert _from_environment(monkeypatch, "SHOPGRAPH_JWT_KEYS", value).jwt_keys == keys


@pytest.mark.parametrize("value", ["secret", "k1:", ":s1", '{"k1": 1}', '{"k1": ""}', '{"k1"'])
def test_malformed_jwt_keys_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    _refusal(monkeypatch, "SHOPGRAPH_JWT_KEYS", value)


def test_a_refused_jwt_key_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A secret with a comma, written as text: its tail looks like an entry without a kid.
    message = _refusal(monkeypatch, "SHOPGRAPH_JWT_KEYS", "k1:first-half,second-half")

    assert "half" not in message
    assert "entry 2" in message


def test_a_misspelled_variable_is_refused_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(monkeypatch, "SHOPGRAPH_CORS_ORIGIN", "http://localhost:3000")

    assert message.endswith("did you mean SHOPGRAPH_CORS_ORIGINS?"), message


def test_variables_of_the_test_suite_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPGRAPH_TEST_ANYTHING", "1")

    assert load_settings().port == 8000


def test_the_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _from_environment(monkeypatch, "SHOPGRAPH_LOG_LEVEL", "debug").log_level == "DEBUG"


@pytest.mark.parametrize("value", ["::1", "0.0.0.0", "localhost", "api.shop-1.internal"])
def test_hosts_may_be_addresses_or_names(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert _from_environment(monkeypatch, "SHOPGRAPH_HOST", value).host == value


@pytest.mark.parametrize("value", ["", "bad host", "http://localhost", "-a.example"])
def test_a_bad_host_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    _refusal(monkeypatch, "SHOPGRAPH_HOST", value)
