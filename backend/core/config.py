"""Settings from the environment (and `.env`): the README's configuration table."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from limits import parse as parse_rate_limit
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VAR_DIR = Path("var")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class EmailBackend(StrEnum):
    CONSOLE = "console"
    SMTP = "smtp"


class DatabasePooler(StrEnum):
    NONE = "none"
    PGBOUNCER = "pgbouncer"  # transaction pooling: no prepared statements, no startup settings


class ConfigurationError(RuntimeError):
    """The configuration cannot run; the message is one line for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    environment: Environment = Environment.DEVELOPMENT

    database_url: str = "sqlite+aiosqlite:///./var/app.db"
    migrations_database_url: str | None = None
    database_app_role: str = "app_user"
    database_pool_size: int = 10
    database_max_overflow: int = 10
    database_pool_timeout_seconds: float = 10.0
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Cuts a runaway statement on PostgreSQL (0: no limit); the request gets a 503.
    database_statement_timeout_ms: int = Field(default=5000, ge=0)
    database_pooler: DatabasePooler = DatabasePooler.NONE
    # SIGTERM: how long in-flight requests, then queued mail, may take before the worker exits.
    shutdown_grace_seconds: int = Field(default=20, ge=0)
    # Off: SQLAlchemy's asyncpg ping is BEGIN, a query and ROLLBACK, three round trips on every
    # checkout. Without it a connection broken by a database restart fails one request, after
    # which the whole pool is replaced.
    database_pool_pre_ping: bool = False

    secret_key: SecretStr | None = None
    jwt_private_keys: SecretStr | None = None
    # Defaults to http://HOST:PORT; set it when a proxy or a public name sits in front.
    public_base_url: str = ""
    forwarded_allow_ips: str = "127.0.0.1"

    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=2_592_000, gt=0)
    invitation_ttl_seconds: int = Field(default=604_800, gt=0)
    invitations_per_tenant_per_day: int = Field(default=200, gt=0)
    invitation_resend_cooldown_seconds: int = Field(default=60, ge=0)  # 0: no cooldown
    one_time_token_ttl_seconds: int = Field(default=86_400, gt=0)

    # Deleted projects and tasks stay in the trash this long; then the purge removes them.
    trash_retention_days: int = Field(default=30, ge=0)
    # A tenant its owner deleted can be restored this long; then the purge removes it.
    tenant_deletion_grace_days: int = Field(default=14, ge=0)
    # How often each worker checks whether the day's purge is due (one of them runs it).
    purge_check_seconds: float = Field(default=3600.0, gt=0)
    # 0 turns the in-process purge off (run `tenantdesk purge` from a scheduler instead).
    purge_interval_seconds: float = Field(default=86_400.0, ge=0)

    email_backend: EmailBackend = EmailBackend.CONSOLE
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    email_from: str = "tenantdesk <no-reply@localhost>"

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None
    default_client_id: str = "web"

    # Failed sign-ins per client address; past LOGIN_ACCOUNT_FAILURE_BUDGET failures an account
    # takes further attempts only from addresses it signed in from lately (README).
    login_rate_limit: str = "10/minute"
    login_account_failure_budget: str = "50/hour"
    redis_url: str | None = None
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    allow_signup: bool = True

    # /docs and /openapi.json: on by default, off by default in production.
    docs_enabled: bool | None = None
    # /metrics wants `Authorization: Bearer <METRICS_TOKEN>` when set; in production it is
    # served only when set.
    metrics_token: SecretStr | None = None

    # Larger request bodies get 413 before they are read (backend/core/body_limit.py).
    max_request_body_bytes: int = Field(default=1_048_576, gt=0)

    log_level: str = "INFO"
    cors_origins: Annotated[list[str], NoDecode] = []

    # Webhooks (README, "Webhooks"): the wait before each retry of a failed delivery, with
    # jitter; endpoints disabled after that many consecutive failed deliveries.
    webhook_retry_schedule_seconds: Annotated[list[float], NoDecode] = [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    ]
    webhook_disable_after_failures: int = Field(default=20, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Loopback, private, link-local and metadata targets: allowed by default outside production.
    webhook_allow_private_targets: bool | None = None
    # When set, the only hosts webhooks may target (names or addresses), checked before any
    # lookup: an egress allow-list.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = []
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # The service process runs the dispatcher; false when `tenantdesk worker` runs it instead.
    webhook_dispatcher_in_process: bool = True
    # Outbox events whose deliveries are over (succeeded or failed), with their deliveries and
    # delivery log, are kept this long; then the purge removes them.
    webhook_log_retention_days: int = Field(default=30, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("webhook_retry_schedule_seconds", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(delay) for delay in value.split(",") if delay.strip()]
        return value

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _non_negative_delays(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("delays are seconds, zero or more")
        return value

    @field_validator("login_rate_limit", "login_account_failure_budget")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(
            value
        )  # "10/minute", "50/hour": a typo fails at start-up, not at the first sign-in
        return value

    @field_validator("database_app_role")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        # Inlined into GRANT statements by the migrations, so only a bare identifier will do.
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError("must be a lower-case SQL identifier")
        return value

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        if not self.migrations_database_url:
            self.migrations_database_url = self.database_url
        self.public_base_url = (self.public_base_url or f"http://{self.host}:{self.port}").rstrip(
            "/"
        )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def allows_private_webhook_targets(self) -> bool:
        if self.webhook_allow_private_targets is not None:
            return self.webhook_allow_private_targets
        return not self.is_production

    @property
    def serves_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    @property
    def metrics_token_value(self) -> str | None:
        return self.metrics_token.get_secret_value() if self.metrics_token else None

    @property
    def serves_metrics(self) -> bool:
        return not self.is_production or bool(self.metrics_token_value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def issuer(self) -> str:
        return self.public_base_url

    def secret_key_value(self) -> str:
        return _required_secret(self.secret_key, "SECRET_KEY")

    def jwt_private_keys_value(self) -> str:
        return _required_secret(self.jwt_private_keys, "JWT_PRIVATE_KEYS")


def _required_secret(value: SecretStr | None, name: str) -> str:
    if value is None or not value.get_secret_value():
        raise ConfigurationError(f"{name} is not set")
    return value.get_secret_value()


def generate_private_key_pem() -> str:
    """A fresh P-256 signing key for ES256 access tokens."""
    from joserfc.jwk import ECKey

    return ECKey.generate_key("P-256", private=True).as_pem(private=True).decode()


def _read_or_create_secret(path: Path, create: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = create()
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def finalise_secrets(settings: Settings) -> Settings:
    """Fill in missing secrets: generated once under `var/` in development, fatal in production."""
    missing = [
        name
        for name in ("secret_key", "jwt_private_keys")
        if getattr(settings, name) is None or not getattr(settings, name).get_secret_value()
    ]
    if settings.is_production:
        if missing:
            raise ConfigurationError(
                f"{missing[0].upper()} must be set when ENVIRONMENT=production"
            )
        return settings
    if "secret_key" in missing:
        settings.secret_key = SecretStr(
            _read_or_create_secret(VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(48))
        )
    if "jwt_private_keys" in missing:
        settings.jwt_private_keys = SecretStr(
            _read_or_create_secret(VAR_DIR / "jwt_private_key.pem", generate_private_key_pem)
        )
    return settings


@lru_cache
def get_settings() -> Settings:
    return finalise_secrets(Settings())
