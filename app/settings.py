"""Typed settings read from SHOPGRAPH_* environment variables (the only reader of os.environ)."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretBytes,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.settings_text import (
    MAX_TIER_CAPACITY,
    MAX_TIER_RESTORE_RATE,
    as_list,
    as_mapping,
    data_key,
    data_keys,
    mailbox,
    network,
    origin,
    smtp_url,
    tier,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./shopgraph.db"
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me"
MIN_SECRET_KEY_LENGTH = 32
ENV_PREFIX = "SHOPGRAPH_"
# Variables of the test suite share the prefix but are no settings.
NOT_SETTINGS_PREFIX = "SHOPGRAPH_TEST_"
HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*$")


class Environment(StrEnum):
    """Where the server runs: development shows debug data, production hides it."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it in one line."""


class Settings(BaseSettings):
    """Every knob of shopgraph, with types, defaults and validation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # Requests wait up to redis_pool_timeout_seconds for a pooled connection (not a failover).
    redis_pool_size: Annotated[int, Field(ge=1, le=1000)] = 50
    redis_pool_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5
    # The response-cache hit's one multiplexed connection (app/platform/redis_pipe.py).
    redis_max_in_flight: Annotated[int, Field(ge=1, le=100_000)] = 1000
    redis_failover_pause_seconds: Annotated[float, Field(ge=0, le=60)] = 0.5
    secret_key: Annotated[str, Field(min_length=1)] = DEVELOPMENT_SECRET_KEY
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
    # Subscriptions (WebSocket): connection_init must come within the timeout; keep-alive
    # while idle; operations per connection and connections per viewer (per process).
    ws_init_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    stream_keep_alive_seconds: Annotated[float, Field(gt=0, le=3600)] = 15.0
    ws_max_operations: Annotated[int, Field(ge=1, le=1000)] = 20
    ws_max_connections_per_viewer: Annotated[int, Field(ge=1, le=100_000)] = 10
    ws_per_message_deflate: bool = False  # compress WebSocket messages (permessage-deflate)
    gzip_min_bytes: Annotated[int, Field(ge=0)] = 1000
    # Carts: the most units of one variant in a cart, and the most lines (variants) in one cart.
    max_cart_line_quantity: Annotated[int, Field(ge=1, le=100_000)] = 99
    max_cart_lines: Annotated[int, Field(ge=1, le=1000)] = 50
    # Checkout: the flat shipping fee of an order, in minor units of the shop currency.
    shipping_fee_minor: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    # "test": the built-in test gateway; "none": every payment declined. Unset: test, but
    # none in production (tok_success must never pay for a real order by default).
    payment_gateway: Literal["test", "none"] | None = None
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    # A request waits this long at most for a pooled connection, a new one, or one statement.
    db_pool_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    db_connect_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    db_statement_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    document_cache_size: Annotated[int, Field(ge=0, le=100_000)] = 1000
    # Query text the document cache keeps in all; longer documents than the second are never kept.
    document_cache_bytes: Annotated[int, Field(ge=0, le=10_000_000_000)] = 20_000_000
    max_cached_document_bytes: Annotated[int, Field(ge=0, le=10_000_000)] = 10_000
    # Entity and response caches (README: Caching); Redis when redis_url is set, else memory.
    cache_enabled: bool = True
    # The response cache alone (with cache_enabled): off, only the entity cache answers.
    response_cache_enabled: bool = True
    cache_key_prefix: Annotated[str, Field(min_length=1, max_length=100)] = "shopgraph:cache:v1:"
    entity_cache_ttl_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300

    # Authentication
    access_token_ttl_seconds: Annotated[int, Field(ge=30, le=86_400)] = 900
    refresh_token_ttl_days: Annotated[int, Field(ge=1, le=365)] = 30
    partner_token_ttl_seconds: Annotated[int, Field(ge=30, le=86_400)] = 900
    # NoDecode: list and dict settings take plain text as well as JSON (the validators parse).
    jwt_keys: Annotated[dict[str, str] | None, NoDecode] = Field(
        default=None,
        description="kid -> signing secret, as `kid:secret,kid2:secret2` or a JSON object "
        '(`{"kid": "secret"}`, needed when a secret contains a comma); every key verifies, '
        "the active one signs. Unset or empty: one key derived from SECRET_KEY.",
    )
    jwt_active_kid: str | None = None
    password_min_length: Annotated[int, Field(ge=8, le=128)] = 10
    password_hash_concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    login_max_failures_per_account: Annotated[int, Field(ge=1, le=1000)] = 5
    login_max_failures_per_ip: Annotated[int, Field(ge=1, le=10_000)] = 20
    login_failure_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900
    # Past this many failures of one account from all IPs, sign-in slows (never locks).
    login_max_failures_per_account_total: Annotated[int, Field(ge=1, le=100_000)] = 100
    login_slow_lane_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    register_max_per_ip: Annotated[int, Field(ge=1, le=100_000)] = 10  # per window, kept or not
    register_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 3600
    oauth_max_failures_per_client: Annotated[int, Field(ge=1, le=10_000)] = 10
    oauth_max_failures_per_ip: Annotated[int, Field(ge=1, le=10_000)] = 20

    # Personal data at rest (README: Personal data): AES-256-GCM keys by key id, the one that
    # encrypts, and the HMAC key of search hashes. Unset in development: derived from SECRET_KEY.
    data_keys: Annotated[dict[str, SecretBytes] | None, NoDecode] = Field(
        default=None,
        description="key id -> 32 random bytes in base64, as `k1:base64,k2:base64` or a JSON "
        "object; every key decrypts, DATA_KEY_ID encrypts. Production refuses to start without.",
    )
    data_key_id: str | None = None
    data_hash_key: SecretBytes | None = None

    # Mail (README: Mail): SMTP when smtp_url is set, else .eml files in outbox_dir.
    smtp_url: str | None = Field(default=None, repr=False)  # may carry a password
    smtp_starttls: Literal["auto", "require", "off"] = "auto"
    smtp_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    mail_from: Annotated[str, AfterValidator(mailbox)] = "shopgraph <no-reply@shopgraph.localhost>"
    outbox_dir: Annotated[str, Field(min_length=1)] = "outbox"

    # Background jobs (README: Background jobs). Unset: in the server (in-process broker) when
    # there is no Redis, else in `shopgraph worker`. On: in the server also with Redis. Off
    # without Redis: this process only writes jobs to the outbox (another runs them).
    jobs_in_process: bool | None = None
    jobs_stream: Annotated[str, Field(min_length=1, max_length=100)] = "shopgraph:jobs:v1"
    job_concurrency: Annotated[int, Field(ge=1, le=1000)] = 10
    job_max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    job_backoff_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0  # doubles per attempt
    job_backoff_max_seconds: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    # A started job is not started elsewhere for this long (it must finish within it).
    job_lease_seconds: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    # An unacknowledged message idle this long goes to another worker; a relayed job not
    # done after this long is relayed again. More than the lease.
    job_redelivery_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    outbox_relay_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # A checkout that takes a variant's stock from above this to at most this alerts staff.
    low_stock_threshold: Annotated[int, Field(ge=0, le=1_000_000)] = 5
    cleanup_interval_seconds: Annotated[float, Field(gt=0, le=604_800)] = 3600.0
    # A cart nobody changed for this long is abandoned (deleted by the clean-up job).
    abandoned_cart_days: Annotated[int, Field(ge=1, le=3650)] = 30

    # Query limits, checked before execution
    max_query_depth: Annotated[int, Field(ge=1, le=100)] = 10
    max_aliases: Annotated[int, Field(ge=1, le=1000)] = 30
    max_tokens: Annotated[int, Field(ge=10, le=1_000_000)] = 5000
    max_directives: Annotated[int, Field(ge=0, le=1000)] = 50
    max_query_cost: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    operation_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_query_bytes: Annotated[int, Field(ge=100, le=10_000_000)] = 20_000  # UTF-8, unparsed
    introspection: bool | None = Field(
        default=None, description="Allow introspection; defaults to on in development only."
    )

    # Rate limits: a leaky bucket of cost points per caller
    # Wide ceilings: a load test lifts the budget above what a fast cache hit spends.
    rate_limit_capacity: Annotated[int, Field(ge=1, le=1_000_000_000)] = 1000
    rate_limit_restore_rate: Annotated[float, Field(gt=0, le=100_000_000)] = 50.0
    partner_tiers: Annotated[dict[str, tuple[int, float]], NoDecode] = Field(
        default={"standard": (1000, 50.0), "premium": (5000, 250.0)},
        description="Partner rate-limit tiers, tier -> capacity and restore per second, as "
        "`standard:1000/50,premium:5000/250` or a JSON object "
        '(`{"standard": [1000, 50], "premium": [5000, 250]}`). Capacity is a whole number '
        f"from 1 to {MAX_TIER_CAPACITY}, the restore rate a number above 0 up to "
        f"{MAX_TIER_RESTORE_RATE}; at least one tier.",
    )
    # Paid before any parse, never refunded: by every request, and per started KB of a new
    # (uncached) document for its parse and validation.
    admission_charge: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    parse_charge_per_kb: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    # A 429 at admission (the bucket was already empty) is answered this late at most.
    throttled_hold_seconds: Annotated[float, Field(ge=0, le=10)] = 1.0
    rate_limit_key_prefix: Annotated[str, Field(min_length=1, max_length=100)] = "shopgraph:rl:v1:"
    rate_limit_enabled: bool = Field(
        default=True,
        description="Refuse requests over the caller's cost budget (429 THROTTLED). "
        "Off: costs are still computed and reported.",
    )

    # Persisted queries (README: Persisted queries): APQ store bounds (memory: entries and
    # bytes; Redis: TTL); trusted-documents-only for anonymous callers (partners always are).
    apq_max_entries: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000
    apq_max_bytes: Annotated[int, Field(ge=0, le=10_000_000_000)] = 20_000_000
    apq_ttl_seconds: Annotated[int, Field(ge=1, le=30 * 86_400)] = 86_400
    trusted_documents_only: bool = False

    # HTTP
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call from a browser, as "
        "`http://localhost:3000,https://shop.example` or a JSON list; each is "
        "scheme://host[:port] (a trailing / is dropped) or `*`. Empty: no CORS headers.",
    )

    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, as "
        "`10.0.0.1,10.1.0.0/16` or a JSON list of IPs or CIDRs. Empty: no proxy header "
        "is believed; the client address is the connection's.",
    )
    # Server limits, passed to uvicorn by `serve` (README: Limits), and the body deadline (408);
    # the request head's deadline (408) and size (431) are app/http/server_protocol.py's
    body_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    header_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_header_bytes: Annotated[int, Field(ge=1024, le=10_000_000)] = 65_536
    timeout_keep_alive_seconds: Annotated[int, Field(ge=1, le=3600)] = 5
    limit_concurrency: Annotated[int | None, Field(ge=1, le=1_000_000)] = 1000  # None: no limit
    h11_max_incomplete_event_size: Annotated[int, Field(ge=1024, le=10_000_000)] = 16_384
    timeout_graceful_shutdown_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    # SIGTERM: /readyz answers 503 this long before uvicorn stops accepting (0: at once),
    # so a balancer polling readiness takes the process out of rotation first.
    shutdown_drain_seconds: Annotated[float, Field(ge=0, le=600)] = 0.0

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        return [network(item) for item in as_list(value)]

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return [origin(item) for item in as_list(value)]

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _parse_jwt_keys(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        keys = as_mapping(value, entry="kid:secret", example="kid1:secret1,kid2:secret2")
        for kid, secret in keys.items():
            if not kid or not isinstance(secret, str) or not secret:
                # Never echo a secret: name the key id only.
                raise ValueError(f"key {kid!r} needs a non-empty kid and secret")
        return keys

    @field_validator("data_keys", mode="before")
    @classmethod
    def _parse_data_keys(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return data_keys(value)

    @field_validator("data_hash_key", mode="before")
    @classmethod
    def _parse_data_hash_key(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return data_key("the key", value)

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _parse_smtp_url(cls, value: object) -> object:
        return None if value in (None, "") else smtp_url(value)

    @field_validator("partner_tiers", mode="before")
    @classmethod
    def _parse_partner_tiers(cls, value: object) -> object:
        tiers = as_mapping(
            value,
            entry="tier:capacity/restore_per_second",
            example="standard:1000/50,premium:5000/250",
            echo=True,
        )
        if not tiers:
            raise ValueError("needs at least one tier, e.g. standard:1000/50")
        return {name: tier(name, spec) for name, spec in tiers.items()}

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("host")
    @classmethod
    def _host_name_or_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not HOSTNAME.match(value) or len(value) > 253:
                raise ValueError(f"{value!r} is neither an IP address nor a host name") from None
        return value

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
        self._check_data_keys()
        if self.default_page_size > self.max_page_size:
            raise ValueError("SHOPGRAPH_DEFAULT_PAGE_SIZE: must not exceed SHOPGRAPH_MAX_PAGE_SIZE")
        if self.job_redelivery_seconds <= self.job_lease_seconds:
            raise ValueError(
                "SHOPGRAPH_JOB_REDELIVERY_SECONDS: must exceed SHOPGRAPH_JOB_LEASE_SECONDS"
            )
        return self

    @property
    def runs_jobs_in_process(self) -> bool:
        """Whether the server itself runs the jobs (always without Redis)."""
        if self.jobs_in_process is None:
            return self.redis_url is None
        return self.jobs_in_process

    def _check_data_keys(self) -> None:
        keys = {kid: key.get_secret_value() for kid, key in (self.data_keys or {}).items()}
        if self.data_key_id is not None and self.data_key_id not in keys:
            raise ValueError("SHOPGRAPH_DATA_KEY_ID: names no key of SHOPGRAPH_DATA_KEYS")
        if self.env is not Environment.PRODUCTION:
            return
        if not keys:
            raise ValueError("SHOPGRAPH_DATA_KEYS: production needs keys for personal data")
        if self.data_hash_key is None:
            raise ValueError("SHOPGRAPH_DATA_HASH_KEY: production needs a key for search hashes")
        if self.data_hash_key.get_secret_value() in keys.values():
            raise ValueError(
                "SHOPGRAPH_DATA_HASH_KEY: must differ from every SHOPGRAPH_DATA_KEYS key"
            )

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
    _refuse_unknown_variables()
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = " ".join(error["msg"].removeprefix("Value error, ").split())
    if not error["loc"]:
        return message  # model-level checks name their settings themselves
    name, *inside = (str(part) for part in error["loc"])
    where = f"{'.'.join(inside)}: " if inside else ""
    return f"{ENV_PREFIX}{name.upper()}: {where}{message}"


def _refuse_unknown_variables() -> None:
    # pydantic-settings ignores variables it does not know: a misspelled setting would
    # silently keep its default.
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for variable in sorted(os.environ):
        if (
            variable.startswith(ENV_PREFIX)
            and not variable.startswith(NOT_SETTINGS_PREFIX)
            and variable not in known
        ):
            close = difflib.get_close_matches(variable, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise SettingsError(f"{variable}: not a shopgraph setting{hint}")
