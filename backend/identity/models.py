"""Global identity tables: users, OAuth2 clients, refresh and one-time tokens, personal API keys,
admin panel sessions, platform audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.database import Base, CreatedAt, UUIDPrimaryKey, string_enum, utcnow
from backend.core.search import trigram_index


class User(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "users"
    __table_args__ = (trigram_index("users", "email"), trigram_index("users", "full_name"))

    # Stored normalised (trimmed, lower-cased), which makes the unique index case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None]
    # Access tokens issued before this instant are refused ("log out everywhere", deactivation).
    tokens_valid_after: Mapped[datetime | None]


class ClientRole(StrEnum):
    """The tenant role a service client acts with; owner is never delegated to a machine."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class OAuthClient(CreatedAt, Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    # Not `tenant_id`: the token endpoint must find a client before any tenant context exists.
    owner_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[ClientRole | None] = mapped_column(string_enum(ClientRole, "client_role"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]

    @property
    def is_confidential(self) -> bool:
        return self.client_secret_hash is not None


class RefreshToken(UUIDPrimaryKey, Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_user_id_revoked_at", "user_id", "revoked_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE")
    )
    scope: Mapped[str] = mapped_column(String(500), default="")
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The family's absolute expiry: every rotated successor keeps it.
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApiKey(UUIDPrimaryKey, CreatedAt, Base):
    """A personal API key: acts for its user in one tenant, with at most `role`.

    Global, like `refresh_tokens`: a key is found by its hash before any tenant context exists,
    so its tenant column is `scope_tenant_id`, not `tenant_id`, and every statement names it.
    Only the key's SHA-256 is stored; `prefix` (its first characters) tells keys apart in lists.
    """

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_id_created_at_id", "user_id", "created_at", "id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope_tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A `tenants.roles.TenantRole` value (identity sits below the tenants layer); the effective
    # role is the lower of this one and the user's current role in the tenant.
    role: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="raise")


class AdminSession(CreatedAt, Base):
    """A signed-in admin panel session. The cookie holds the session id; only its SHA-256 is
    stored, so a copy of this table signs nobody in. Deleting the row ends the session."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]


class RevokedAccessToken(Base):
    """Access tokens revoked before their expiry (RFC 7009); rows are useless once expired."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OneTimePurpose(StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a purpose, not a secret)
    EMAIL_VERIFICATION = "email_verification"


class OneTimeToken(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "one_time_tokens"

    purpose: Mapped[OneTimePurpose] = mapped_column(string_enum(OneTimePurpose, "token_purpose"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PlatformAuditEvent(UUIDPrimaryKey, CreatedAt, Base):
    """Admin writes that concern no tenant (a user deactivated): the shape of `audit_events`."""

    __tablename__ = "platform_audit_events"
    __table_args__ = (
        Index("ix_platform_audit_events_created_at_id", "created_at", "id"),
        trigram_index("platform_audit_events", "action"),
        trigram_index("platform_audit_events", "target_id"),
    )

    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    anonymous_actor_id: Mapped[uuid.UUID | None]  # as in `audit_events`
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
