"""Typed settings read from SHOPGRAPH_* environment variables (the only reader of os.environ)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./shopgraph.db"
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me"
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    """Where the server runs: development shows debug data, production hides it."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it in one line."""


class Settings(BaseSettings):
    """Every knob of shopgraph, with types, defaults and validation."""

    model_config = SettingsConfigDict(env_prefix="SHOPGRAPH_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str = DEVELOPMENT_SECRET_KEY
    debug: bool | None = Field(
        default=None,
        description="Add extensions.debug to responses; defaults to on in development only.",
    )
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    default_page_size: Annotated[int, Field(ge=1, le=1000)] = 20
    max_page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_000_000
    gzip_min_bytes: Annotated[int, Field(ge=0)] = 1000
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    document_cache_size: Annotated[int, Field(ge=0, le=100_000)] = 1000

    # Authentication
    access_token_ttl_seconds: Annotated[int, Field(ge=30, le=86_400)] = 900
    refresh_token_ttl_days: Annotated[int, Field(ge=1, le=365)] = 30
    partner_token_ttl_seconds: Annotated[int, Field(ge=30, le=86_400)] = 900
    jwt_keys: dict[str, str] | None = Field(
        default=None,
        description="JSON object kid -> signing secret; every key verifies, the active one signs. "
        "Unset: one key derived from SECRET_KEY.",
    )
    jwt_active_kid: str | None = None
    password_min_length: Annotated[int, Field(ge=8, le=128)] = 10
    password_hash_concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    login_max_failures_per_account: Annotated[int, Field(ge=1, le=1000)] = 5
    login_max_failures_per_ip: Annotated[int, Field(ge=1, le=10_000)] = 20
    login_failure_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900

    # Query limits, checked before execution
    max_query_depth: Annotated[int, Field(ge=1, le=100)] = 10
    max_aliases: Annotated[int, Field(ge=1, le=1000)] = 30
    max_tokens: Annotated[int, Field(ge=10, le=1_000_000)] = 5000
    max_directives: Annotated[int, Field(ge=0, le=1000)] = 50
    max_query_cost: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    operation_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    introspection: bool | None = Field(
        default=None, description="Allow introspection; defaults to on in development only."
    )

    # Rate limits: a leaky bucket of cost points per caller
    rate_limit_capacity: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    rate_limit_restore_rate: Annotated[float, Field(gt=0, le=1_000_000)] = 50.0
    partner_tiers: dict[str, tuple[int, float]] = Field(
        default={"standard": (1000, 50.0), "premium": (5000, 250.0)},
        description="JSON object tier -> [capacity, restore per second] for partners.",
    )
    rate_limit_key_prefix: Annotated[str, Field(min_length=1, max_length=100)] = "shopgraph:rl:v1:"
    rate_limit_enabled: bool = Field(
        default=True,
        description="Refuse requests over the caller's cost budget (429 THROTTLED). "
        "Off: costs are still computed and reported.",
    )

    # HTTP
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> Settings:
        if self.env is Environment.PRODUCTION and (
            self.secret_key == DEVELOPMENT_SECRET_KEY
            or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                f"SHOPGRAPH_SECRET_KEY: production needs a random secret of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters"
            )
        if self.jwt_active_kid is not None and self.jwt_active_kid not in self.signing_keys:
            raise ValueError("SHOPGRAPH_JWT_ACTIVE_KID: names no key of SHOPGRAPH_JWT_KEYS")
        if self.env is Environment.PRODUCTION and any(
            len(secret) < MIN_SECRET_KEY_LENGTH for secret in self.signing_keys.values()
        ):
            raise ValueError(
                f"SHOPGRAPH_JWT_KEYS: every key needs at least {MIN_SECRET_KEY_LENGTH} characters"
            )
        if self.default_page_size > self.max_page_size:
            raise ValueError("SHOPGRAPH_DEFAULT_PAGE_SIZE: must not exceed SHOPGRAPH_MAX_PAGE_SIZE")
        return self

    @property
    def introspection_enabled(self) -> bool:
        """Whether introspection queries are allowed."""
        if self.introspection is None:
            return self.env is Environment.DEVELOPMENT
        return self.introspection

    @property
    def rate_limiting_enabled(self) -> bool:
        """Whether /graphql spends and enforces cost budgets."""
        return self.rate_limit_enabled

    @property
    def signing_keys(self) -> dict[str, str]:
        """kid -> secret of every JWT key that verifies."""
        return self.jwt_keys or {"default": self.secret_key}

    @property
    def active_kid(self) -> str:
        """The kid of the key that signs new tokens."""
        return self.jwt_active_kid or next(iter(self.signing_keys))

    @property
    def debug_enabled(self) -> bool:
        """Whether responses carry extensions.debug."""
        if self.debug is None:
            return self.env is Environment.DEVELOPMENT
        return self.debug

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError with one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if location:
            return _raise(f"SHOPGRAPH_{location.upper()}: {message}")
        return _raise(message)


def _raise(message: str) -> Settings:
    raise SettingsError(message)
